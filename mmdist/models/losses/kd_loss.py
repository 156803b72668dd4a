"""Classic temperature knowledge distillation (Hinton et al., 2015).

The baseline that DIST is compared with. With ``y = act(z / tau)``::

    softmax: loss = tau**2 * mean_i KL(y_t[i] || y_s[i])
    sigmoid: loss = tau**2 * mean_i sum_j KL(Bernoulli(y_t[i, j]) ||
                                              Bernoulli(y_s[i, j]))

Rows are laid out as for DIST (:mod:`mmdist.models.losses.rows`).
"""
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor

from mmdist.registry import MODELS
from .rows import LogitLoss, prepare_rows


def kd_loss(preds_S: Tensor,
            preds_T: Tensor,
            tau: float = 1.0,
            activation: str = 'softmax',
            num_classes: Optional[int] = None,
            valid_mask: Optional[Tensor] = None) -> Tensor:
    """KL-divergence KD loss, averaged over rows and scaled by ``tau**2``.

    Args:
        preds_S: Student logits, (N, C) or (N, C, H, W).
        preds_T: Teacher logits, same shape; detached.
        tau: Temperature.
        activation: 'softmax' (one distribution per row) or 'sigmoid' (one
            Bernoulli per class).
        num_classes: Classes per row, as for DIST.
        valid_mask: Bool mask of valid rows, (N,) or (N, H, W).

    Returns:
        A scalar tensor; 0 when there are no (valid) rows.
    """
    with torch.autocast(device_type=preds_S.device.type, enabled=False):
        s, t = prepare_rows(preds_S, preds_T, activation, num_classes,
                            valid_mask)
        s, t = s / tau, t / tau
        if s.shape[0] == 0:
            return s.sum() * 0
        if activation == 'softmax':
            pointwise = F.kl_div(
                F.log_softmax(s, 1), F.log_softmax(t, 1), log_target=True,
                reduction='sum')
        else:
            p_t = torch.sigmoid(t)
            # KL of Bernoullis = BCE(s, p_t) - BCE(t, p_t) (entropy of p_t).
            pointwise = (
                F.binary_cross_entropy_with_logits(s, p_t, reduction='sum') -
                F.binary_cross_entropy_with_logits(t, p_t, reduction='sum'))
        return tau**2 * pointwise / s.shape[0]


@MODELS.register_module()
class KDLoss(LogitLoss):
    """KD loss as a module, registered as ``mmdist.KDLoss``.

    Args:
        tau: Temperature.
        activation: 'softmax' or 'sigmoid'.
        num_classes: Classes per row; None keeps all channels in one row.
        loss_weight: Multiplies the loss.
        ignore_index: Label of the pixels to leave out when forward gets
            ``gt_labels``.
    """

    def forward(self,
                preds_S: Tensor,
                preds_T: Tensor,
                valid_mask: Optional[Tensor] = None,
                gt_labels: Optional[Tensor] = None) -> Tensor:
        """Compute the loss; the arguments are those of DISTLoss.forward."""
        return self.loss_weight * kd_loss(
            preds_S, preds_T, self.tau, self.activation, self.num_classes,
            self.valid_mask(preds_S, valid_mask, gt_labels))
