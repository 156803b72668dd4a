"""DIST: relation-based logit distillation (Huang et al., NeurIPS 2022).

With ``y = act(z / tau)`` for student (s) and teacher (t) and the Pearson
correlation ``rho(a, b) = <a - mean(a), b - mean(b)> /
(||a - mean(a)|| * ||b - mean(b)|| + eps)``::

    inter = 1 - mean_i rho(y_s[i, :], y_t[i, :])   # across classes, per row
    intra = 1 - mean_j rho(y_s[:, j], y_t[:, j])   # across rows, per class
    loss  = loss_weight * tau**2 * (beta * inter + gamma * intra)

The two correlations and their gradients are computed by one autograd
function with the gradient in closed form: it keeps the two probability
matrices and one scratch buffer (which becomes the gradient) for the
backward pass and never rebuilds the centred copies there, so the loss costs
no more than a KL-divergence KD loss and holds less memory than the formula
written out with autograd (benchmarks/bench_dist_loss.py).
"""
from typing import Optional, Tuple

import torch
from torch import Tensor

from mmdist.registry import MODELS
from .rows import LogitLoss, prepare_rows


def _activate(logits: Tensor, tau: float, activation: str) -> Tensor:
    scaled = logits / tau if tau != 1 else logits
    if activation == 'softmax':
        return torch.softmax(scaled, dim=1)
    return torch.sigmoid(scaled)


def _correlate(p: Tensor, q: Tensor, dim: int, a: Tensor, b: Tensor,
               ab: Tensor, eps: float) -> Tuple[Tensor, ...]:
    """Pearson correlation of ``p`` and ``q`` along ``dim``.

    ``a``, ``b`` and ``ab`` are scratch buffers shaped like ``p``: on CPU a
    fresh large tensor costs more in page faults than the arithmetic, so the
    buffers are reused for both dims and, for ``ab``, for the gradient.
    Returns the correlations and the statistics the backward pass needs.
    """
    mean_p = p.mean(dim, keepdim=True)
    mean_q = q.mean(dim, keepdim=True)
    torch.sub(p, mean_p, out=a)
    torch.sub(q, mean_q, out=b)
    dot = torch.mul(a, b, out=ab).sum(dim)
    norm_a = a.mul_(a).sum(dim).sqrt_()
    norm_b = b.mul_(b).sum(dim).sqrt_()
    denom = norm_a * norm_b + eps
    return dot / denom, mean_p, mean_q, norm_a, norm_b, dot, denom


def _grad_coefficients(grad: Tensor, count: int, mean_p: Tensor,
                       mean_q: Tensor, norm_a: Tensor, norm_b: Tensor,
                       dot: Tensor, denom: Tensor,
                       dim: int) -> Tuple[Tensor, Tensor, Tensor]:
    """Gradient of ``1 - mean(rho)`` w.r.t. ``p`` as ``v*p + u*q + c``.

    d rho / d a = b / D - <a, b> |b| / (|a| D^2) a, with a = p - mean_p,
    b = q - mean_q and D = |a| |b| + eps; the centring is folded into the
    constant ``c``, so the backward pass needs only ``p`` and ``q``.
    """
    scale = -grad / count
    u = scale / denom
    safe_norm_a = torch.where(norm_a > 0, norm_a, torch.ones_like(norm_a))
    k = torch.where(norm_a > 0, dot * norm_b / (safe_norm_a * denom * denom),
                    torch.zeros_like(norm_a))
    v = -scale * k
    u, v = u.unsqueeze(dim), v.unsqueeze(dim)
    return v, u, -(u * mean_q + v * mean_p)


class _DISTRelations(torch.autograd.Function):
    """(inter, intra) of student logits rows against teacher probabilities.

    Saves ``p``, ``q`` and one scratch buffer that becomes the gradient.
    """

    @staticmethod
    def forward(ctx, logits: Tensor, probs_T: Tensor, tau: float,
                activation: str, eps: float) -> Tuple[Tensor, Tensor]:
        p = _activate(logits, tau, activation)
        rows, cols = p.shape
        zero = p.new_zeros(())
        ctx.tau, ctx.activation = tau, activation
        ctx.terms = []
        grad_buffer = torch.empty_like(p)
        # Not saved through save_for_backward: it is scratch space that the
        # forward writes and the first backward call hands out as the grad.
        ctx.grad_buffer = grad_buffer if ctx.needs_input_grad[0] else None
        ctx.save_for_backward(p, probs_T)
        if rows == 0:
            ctx.terms = [None, None]
            return zero, zero.clone()
        a, b = torch.empty_like(p), torch.empty_like(p)
        losses = []
        # dim 1: inter-class (needs 2 classes); dim 0: intra-class (2 rows).
        for dim, count, other in ((1, rows, cols), (0, cols, rows)):
            if other < 2:
                ctx.terms.append(None)
                losses.append(zero.clone())
                continue
            rho, *stats = _correlate(p, probs_T, dim, a, b, grad_buffer, eps)
            ctx.terms.append((dim, count, stats))
            losses.append(1 - rho.mean())
        return losses[0], losses[1]

    @staticmethod
    def backward(ctx, grad_inter: Tensor, grad_intra: Tensor):
        p, q = ctx.saved_tensors
        grad, ctx.grad_buffer = ctx.grad_buffer, None
        if grad is None:  # a second backward (retain_graph=True)
            grad = torch.empty_like(p)
        terms = [(term, g) for term, g in zip(ctx.terms, (grad_inter,
                                                          grad_intra))
                 if term is not None]
        if not terms:
            return grad.zero_(), None, None, None, None
        for i, ((dim, count, stats), g) in enumerate(terms):
            v, u, c = _grad_coefficients(g / ctx.tau, count, *stats, dim=dim)
            if i == 0:
                torch.addcmul(c, p, v, out=grad)
            else:
                grad.addcmul_(p, v).add_(c)
            grad.addcmul_(q, u)
        # Back through the activation, in place.
        if ctx.activation == 'softmax':
            weighted = torch.bmm(grad.unsqueeze(1), p.unsqueeze(2)).view(-1, 1)
            grad.sub_(weighted).mul_(p)
        else:
            grad.mul_(p)
            grad.addcmul_(grad, p, value=-1)
        return grad, None, None, None, None


def dist_loss_terms(preds_S: Tensor,
                    preds_T: Tensor,
                    tau: float = 1.0,
                    activation: str = 'softmax',
                    num_classes: Optional[int] = None,
                    valid_mask: Optional[Tensor] = None,
                    eps: float = 1e-8) -> Tuple[Tensor, Tensor]:
    """The inter-class and intra-class relation losses of DIST.

    Rows are laid out by :func:`to_rows`: (N, C) gives N rows; dense
    (N, C, H, W) gives one row per position, so the intra-class relation of
    each class is taken over every position of the batch. The teacher side
    is detached, and the arithmetic runs in float32 (float64 stays float64)
    with autocast switched off.

    Degenerate inputs: a term that is undefined returns 0 with zero gradient
    (inter with fewer than 2 columns, intra with fewer than 2 rows, both with
    no rows at all, e.g. zero RoIs or every row masked). A constant row or
    column has correlation 0, as the formula with ``eps`` gives.

    Args:
        preds_S: Student logits, (N, C) or (N, C, H, W).
        preds_T: Teacher logits, same shape as ``preds_S``.
        tau: Temperature applied to both sides before the activation.
        activation: 'softmax' over the classes of a row, or 'sigmoid'.
        num_classes: Split the channels into rows of this many classes (for
            example 80 to make each anchor of a RetinaNet position one row).
            None keeps all channels in one row.
        valid_mask: Bool mask of valid rows, (N,) for 2-D input or (N, H, W)
            for dense input; False rows (ignored pixels) are left out of both
            terms.
        eps: Added to the denominator of each correlation.

    Returns:
        ``(inter, intra)``, scalar tensors without the ``tau**2`` factor.
    """
    with torch.autocast(device_type=preds_S.device.type, enabled=False):
        logits, logits_T = prepare_rows(preds_S, preds_T, activation,
                                        num_classes, valid_mask)
        probs_T = _activate(logits_T, tau, activation)
        return _DISTRelations.apply(logits, probs_T, float(tau), activation,
                                    float(eps))


def dist_loss(preds_S: Tensor,
              preds_T: Tensor,
              beta: float = 1.0,
              gamma: float = 1.0,
              tau: float = 1.0,
              activation: str = 'softmax',
              num_classes: Optional[int] = None,
              valid_mask: Optional[Tensor] = None,
              eps: float = 1e-8) -> Tensor:
    """DIST loss: ``tau**2 * (beta * inter + gamma * intra)``.

    Args:
        preds_S: Student logits, (N, C) or (N, C, H, W).
        preds_T: Teacher logits, same shape as ``preds_S``.
        beta: Weight of the inter-class relation term.
        gamma: Weight of the intra-class relation term.
        tau: Temperature; the loss is scaled by ``tau**2``.
        activation: 'softmax' or 'sigmoid'.
        num_classes: Classes per row, see :func:`dist_loss_terms`.
        valid_mask: Bool mask of valid rows, see :func:`dist_loss_terms`.
        eps: Added to the denominator of each correlation.

    Returns:
        A scalar float32 (or float64) tensor.
    """
    inter, intra = dist_loss_terms(preds_S, preds_T, tau, activation,
                                   num_classes, valid_mask, eps)
    return tau**2 * (beta * inter + gamma * intra)


@MODELS.register_module()
class DISTLoss(LogitLoss):
    """DIST loss as a module, registered as ``mmdist.DISTLoss``.

    ``loss = loss_weight * tau**2 * (beta * inter + gamma * intra)``, see
    :func:`dist_loss_terms` for the terms, the row layout and the degenerate
    cases.

    Args:
        beta: Weight of the inter-class relation term.
        gamma: Weight of the intra-class relation term.
        tau: Temperature.
        activation: 'softmax' or 'sigmoid'.
        num_classes: Classes per row; None keeps all channels in one row.
        loss_weight: Multiplies the whole loss.
        ignore_index: Label of the pixels to leave out when forward gets
            ``gt_labels`` (255 for Cityscapes).
        log_terms: Return ``dict(loss=..., inter=..., intra=...)`` where the
            terms are detached and weighted as in the loss, for logging.
        eps: Added to the denominator of each correlation.
    """

    def __init__(self,
                 beta: float = 1.0,
                 gamma: float = 1.0,
                 tau: float = 1.0,
                 activation: str = 'softmax',
                 num_classes: Optional[int] = None,
                 loss_weight: float = 1.0,
                 ignore_index: Optional[int] = None,
                 log_terms: bool = False,
                 eps: float = 1e-8) -> None:
        super().__init__(tau, activation, num_classes, loss_weight,
                         ignore_index)
        self.beta = beta
        self.gamma = gamma
        self.log_terms = log_terms
        self.eps = eps

    def forward(self,
                preds_S: Tensor,
                preds_T: Tensor,
                valid_mask: Optional[Tensor] = None,
                gt_labels: Optional[Tensor] = None):
        """Compute the loss.

        Args:
            preds_S: Student logits, (N, C) or (N, C, H, W).
            preds_T: Teacher logits, same shape.
            valid_mask: Optional bool mask, (N,) or (N, H, W).
            gt_labels: Optional label map, (N, 1, H', W') or (N, H', W'),
                of any size: pixels labelled ``ignore_index`` are left out.

        Returns:
            The weighted loss, or a dict with ``loss``, ``inter`` and
            ``intra`` when ``log_terms`` is set.
        """
        inter, intra = dist_loss_terms(
            preds_S, preds_T, self.tau, self.activation, self.num_classes,
            self.valid_mask(preds_S, valid_mask, gt_labels), self.eps)
        scale = self.loss_weight * self.tau**2
        inter, intra = scale * self.beta * inter, scale * self.gamma * intra
        loss = inter + intra
        if not self.log_terms:
            return loss
        return dict(loss=loss, inter=inter.detach(), intra=intra.detach())

    def extra_repr(self) -> str:
        return f'beta={self.beta}, gamma={self.gamma}, ' + super().extra_repr()
