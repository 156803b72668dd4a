"""Lay logits out as rows of class scores, shared by the logit losses.

A row is one sample (2-D input) or one spatial position (dense input), or,
when ``num_classes`` splits the channels, one anchor of one position.
"""
from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

ACTIVATIONS = ('softmax', 'sigmoid')


def check_activation(activation: str) -> None:
    """Raise a ValueError unless ``activation`` is one we support."""
    if activation not in ACTIVATIONS:
        raise ValueError(f'activation must be one of {ACTIVATIONS}, '
                         f'got {activation!r}')


def check_pair(preds_S: Tensor, preds_T: Tensor,
               num_classes: Optional[int]) -> int:
    """Check student/teacher logits and return the number of columns.

    Args:
        preds_S: Student logits, (N, C) or (N, C, H, W).
        preds_T: Teacher logits of the same shape.
        num_classes: Columns per row, or None for all channels.

    Returns:
        The number of columns of each row.
    """
    if preds_S.shape != preds_T.shape:
        raise ValueError(
            'student and teacher logits must have the same shape, got '
            f'student {tuple(preds_S.shape)} and teacher '
            f'{tuple(preds_T.shape)}')
    if preds_S.dim() not in (2, 4):
        raise ValueError(
            'logits must be (N, C) or (N, C, H, W), got shape '
            f'{tuple(preds_S.shape)}')
    channels = preds_S.shape[1]
    if num_classes is None:
        return channels
    if num_classes < 1 or channels % num_classes:
        raise ValueError(
            f'num_classes={num_classes} must divide the channel axis of '
            f'logits of shape {tuple(preds_S.shape)} (channels = anchors x '
            'classes)')
    return num_classes


def to_rows(logits: Tensor, num_classes: int) -> Tensor:
    """Return a (rows, num_classes) view or copy of ``logits``.

    (N, C) stays as it is when ``num_classes == C``. (N, A*K, H, W) becomes
    (N*H*W*A, K): every position (and every anchor of it) is one row.
    """
    if logits.dim() == 4:
        logits = logits.permute(0, 2, 3, 1)
    return logits.reshape(-1, num_classes)


def mask_to_rows(valid_mask: Tensor, logits: Tensor,
                 num_classes: int) -> Tensor:
    """Expand a per-sample or per-pixel mask to the rows of ``to_rows``.

    Args:
        valid_mask: Bool mask of shape (N,) for (N, C) logits or (N, H, W)
            for (N, C, H, W) logits; True keeps the row.
        logits: The logits the mask belongs to.
        num_classes: Columns per row.

    Returns:
        A flat bool tensor with one entry per row.
    """
    expected: Tuple[int, ...] = (logits.shape[0], ) + tuple(logits.shape[2:])
    if tuple(valid_mask.shape) != expected:
        raise ValueError(
            f'valid_mask must have shape {expected} (N, or N x H x W) for '
            f'logits of shape {tuple(logits.shape)}, got '
            f'{tuple(valid_mask.shape)}')
    groups = logits.shape[1] // num_classes
    mask = valid_mask.to(device=logits.device, dtype=torch.bool).reshape(-1)
    return mask.repeat_interleave(groups) if groups > 1 else mask


def prepare_rows(preds_S: Tensor, preds_T: Tensor, activation: str,
                 num_classes: Optional[int],
                 valid_mask: Optional[Tensor]) -> Tuple[Tensor, Tensor]:
    """Check a student/teacher pair and return their valid rows.

    The rows come in float32 (float64 stays float64); the teacher's are
    detached. Call it with autocast switched off, so that what follows runs
    in that precision too.

    Returns:
        ``(rows_S, rows_T)``, each (valid rows, classes per row).
    """
    check_activation(activation)
    cols = check_pair(preds_S, preds_T, num_classes)
    dtype = torch.float64 if preds_S.dtype == torch.float64 else torch.float32
    rows_S = to_rows(preds_S, cols).to(dtype)
    rows_T = to_rows(preds_T.detach(), cols).to(dtype)
    if valid_mask is not None:
        keep = mask_to_rows(valid_mask, preds_S, cols)
        rows_S, rows_T = rows_S[keep], rows_T[keep]
    return rows_S, rows_T


def labels_to_mask(gt_labels: Tensor, logits: Tensor,
                   ignore_index: int) -> Tensor:
    """Valid-pixel mask of dense logits from a label map of any size.

    Args:
        gt_labels: Labels, (N, H', W') or (N, 1, H', W'); brought to the
            logits' size by nearest-neighbour resizing.
        logits: Dense logits, (N, C, H, W).
        ignore_index: The label of pixels to leave out.

    Returns:
        A bool mask of shape (N, H, W).
    """
    if logits.dim() != 4:
        raise ValueError('gt_labels needs dense (N, C, H, W) logits, got '
                         f'shape {tuple(logits.shape)}')
    if gt_labels.dim() == 3:
        gt_labels = gt_labels.unsqueeze(1)
    if gt_labels.dim() != 4 or gt_labels.shape[1] != 1 or \
            gt_labels.shape[0] != logits.shape[0]:
        raise ValueError(
            f'gt_labels must be (N, H, W) or (N, 1, H, W) with N = '
            f'{logits.shape[0]}, got shape {tuple(gt_labels.shape)}')
    labels = F.interpolate(
        gt_labels.float(), size=logits.shape[2:], mode='nearest')
    return labels[:, 0].to(torch.long) != ignore_index


class LogitLoss(nn.Module):
    """What the registered logit losses share: settings and row masks.

    Args:
        tau: Temperature.
        activation: 'softmax' or 'sigmoid'.
        num_classes: Classes per row; None keeps all channels in one row.
        loss_weight: Multiplies the loss.
        ignore_index: With ``gt_labels`` given to forward, pixels of this
            label are left out (dense logits only).
    """

    def __init__(self,
                 tau: float = 1.0,
                 activation: str = 'softmax',
                 num_classes: Optional[int] = None,
                 loss_weight: float = 1.0,
                 ignore_index: Optional[int] = None) -> None:
        super().__init__()
        check_activation(activation)
        if tau <= 0:
            raise ValueError(f'tau must be positive, got {tau}')
        self.tau = tau
        self.activation = activation
        self.num_classes = num_classes
        self.loss_weight = loss_weight
        self.ignore_index = ignore_index

    def valid_mask(self, preds_S: Tensor, valid_mask: Optional[Tensor],
                   gt_labels: Optional[Tensor]) -> Optional[Tensor]:
        """Combine an explicit mask and the labels' ignored pixels."""
        if gt_labels is None:
            return valid_mask
        if self.ignore_index is None:
            raise ValueError(
                f'{type(self).__name__} got gt_labels but has no '
                'ignore_index; set ignore_index=255 (for example) in its '
                'config')
        mask = labels_to_mask(gt_labels, preds_S, self.ignore_index)
        return mask if valid_mask is None else mask & valid_mask.bool()

    def extra_repr(self) -> str:
        return (f'tau={self.tau}, activation={self.activation!r}, '
                f'num_classes={self.num_classes}, '
                f'loss_weight={self.loss_weight}, '
                f'ignore_index={self.ignore_index}')
