"""Focal losses with the signatures of mmcv's ``_ext`` kernels.

- ``sigmoid_focal_loss_forward`` / ``_backward``: mmdet's own
  ``py_sigmoid_focal_loss`` element by element (the loss mmdet computes on
  CPU), its gradient by autograd; half-precision inputs (``--amp``) are
  computed in float32 and written back in their own dtype.
- ``softmax_focal_loss_forward`` / ``_backward``: mmcv's CUDA kernels
  written out in torch (mmcv has no CPU kernel). mmcv's wrapper applies the
  softmax itself and passes the probabilities ``p`` ``(N, C)``; with
  ``p_t = p[n, target[n]]`` the loss of row ``n`` is
  ``-alpha * (1 - p_t) ** gamma * log(max(p_t, FLT_MIN))``, times
  ``weight[target[n]]`` when a per-class weight is given, and 0 for a
  negative target (an ignored row). The backward first writes into ``buff``
  ``(N,)`` the derivative w.r.t. ``log p_t`` of the unclamped loss,
  ``alpha * (gamma * (1 - p_t) ** (gamma - 1) * p_t * log(max(p_t,
  FLT_MIN)) - (1 - p_t) ** gamma)`` (weighted alike), then through the
  softmax Jacobian ``grad_input[n, c] = buff[n] * ([c == target[n]] -
  p[n, c])``: the gradient w.r.t. the logits, which the wrapper scales by
  the incoming gradient. The formula is kept as mmcv writes it, so for
  ``0 < gamma < 1`` or ``gamma == 0`` a row with ``p_t == 1`` exactly gets
  a NaN gradient there too (``0 * inf``). Every buffer (``output``,
  ``buff``, ``grad_input``) is written over, as mmcv's kernels assign
  them; half-precision inputs are computed in float32 (so the ``FLT_MIN``
  clamp does not vanish as it does in mmcv's half kernel).
"""
from typing import Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

from . import compute_dtype


def _focal_terms(input: Tensor, target: Tensor, weight: Tensor, gamma: float,
                 alpha: float) -> Tensor:
    """Element-wise sigmoid focal loss as mmdet's ``py_sigmoid_focal_loss``.

    ``target`` holds class indices; ``num_classes`` (one past the last
    column) is background. ``weight``, if not empty, is a per-class weight
    taken at each row's target class, as mmcv's kernel does.
    """
    num_classes = input.size(1)
    input = input.to(compute_dtype(input.dtype))
    onehot = F.one_hot(target, num_classes + 1)[:, :num_classes].type_as(input)
    prob = input.sigmoid()
    pt = (1 - prob) * onehot + prob * (1 - onehot)
    focal_weight = (alpha * onehot + (1 - alpha) *
                    (1 - onehot)) * pt.pow(gamma)
    loss = F.binary_cross_entropy_with_logits(
        input, onehot, reduction='none') * focal_weight
    if weight.numel():
        if bool((target >= num_classes).any()):
            raise ValueError(
                'a per-class focal loss weight needs a foreground target in '
                f'every row (classes 0..{num_classes - 1}); mmcv reads past '
                'the weight for background rows')
        loss = loss * weight[target].unsqueeze(1)
    return loss


def _check_target(input: Tensor, target: Tensor) -> None:
    if input.dim() != 2 or target.shape != input.shape[:1]:
        raise ValueError(
            'sigmoid focal loss expects input (N, C) and target (N,), got '
            f'{tuple(input.shape)} and {tuple(target.shape)}')


def sigmoid_focal_loss_forward(input: Tensor, target: Tensor, weight: Tensor,
                               output: Tensor, gamma: float,
                               alpha: float) -> None:
    """Write the element-wise focal loss of ``input`` ``(N, C)`` and
    ``target`` ``(N,)`` into ``output`` ``(N, C)``."""
    _check_target(input, target)
    output.copy_(_focal_terms(input, target, weight, gamma, alpha))


def sigmoid_focal_loss_backward(input: Tensor, target: Tensor,
                                weight: Tensor, grad_input: Tensor,
                                gamma: float, alpha: float) -> None:
    """Write d(element-wise loss)/d(input) into ``grad_input`` ``(N, C)``
    (mmcv's wrapper multiplies by the incoming gradient)."""
    _check_target(input, target)
    with torch.enable_grad():
        leaf = input.detach().float().requires_grad_(True)
        loss = _focal_terms(leaf, target, weight, gamma, alpha)
        grad, = torch.autograd.grad(loss.sum(), leaf)
    grad_input.copy_(grad)


#: mmcv clamps the probability to C's FLT_MIN before the log, in any dtype.
_FLT_MIN = torch.finfo(torch.float32).tiny


def _check_softmax(input: Tensor, target: Tensor, weight: Tensor) -> None:
    """Shapes mmcv's wrapper asserts, and targets its kernel cannot read."""
    if input.dim() != 2 or target.shape != input.shape[:1]:
        raise ValueError(
            'softmax focal loss expects probabilities (N, C) and target '
            f'(N,), got {tuple(input.shape)} and {tuple(target.shape)}')
    num_classes = input.size(1)
    if weight.numel() and weight.shape != (num_classes, ):
        raise ValueError(
            f'softmax focal loss weight must be per class, ({num_classes},)'
            f', got {tuple(weight.shape)}')
    if target.numel() and int(target.max()) >= num_classes:
        raise ValueError(
            f'softmax focal loss targets must be classes 0..{num_classes - 1}'
            f' (negative to ignore a row), got {int(target.max())}; mmcv\'s '
            'kernel would read the next row\'s probability for target == C')


def _softmax_focal_parts(input: Tensor, target: Tensor, weight: Tensor
                         ) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
    """``(prob, p_t, row weight, counted)`` in float32 or wider; the row
    weight is ``weight[target]`` (1 without a weight), 0 where the target
    is negative, and ``counted`` marks the rows with a target."""
    prob = input.to(compute_dtype(input.dtype))
    counted = target >= 0
    label = target.clamp(min=0)
    p_t = prob.gather(1, label[:, None]).squeeze(1)
    row_weight = counted.to(prob.dtype)
    if weight.numel():
        row_weight = row_weight * weight.to(prob.dtype)[label]
    return prob, p_t, row_weight, counted


def softmax_focal_loss_forward(input: Tensor, target: Tensor, weight: Tensor,
                               output: Tensor, gamma: float,
                               alpha: float) -> None:
    """Write each row's softmax focal loss into ``output``.

    Args:
        input: ``(N, C)`` softmax probabilities (mmcv's wrapper passes the
            softmax of the logits).
        target: ``(N,)`` int64 classes; negative rows give 0.
        weight: ``(C,)`` per-class weight, or empty for none.
        output: ``(N,)``; overwritten.
        gamma: Focusing exponent.
        alpha: Balance factor.
    """
    _check_softmax(input, target, weight)
    _, p_t, row_weight, counted = _softmax_focal_parts(input, target, weight)
    loss = -alpha * (1 - p_t).pow(gamma) * p_t.clamp(min=_FLT_MIN).log()
    # where, not a product: a garbage (e.g. inf) loss of an ignored row
    # must not leak through 0 * inf.
    output.copy_(torch.where(counted, loss * row_weight, 0))


def softmax_focal_loss_backward(input: Tensor, target: Tensor,
                                weight: Tensor, buff: Tensor,
                                grad_input: Tensor, gamma: float,
                                alpha: float) -> None:
    """Write d(row loss)/d(logits) into ``grad_input`` and the per-row
    factor into ``buff``, as mmcv's two backward kernels do.

    Args:
        input: ``(N, C)`` softmax probabilities, as in the forward.
        target: ``(N,)`` int64 classes; negative rows get 0.
        weight: ``(C,)`` per-class weight, or empty for none.
        buff: ``(N,)``; overwritten with the derivative w.r.t. ``log p_t``.
        grad_input: ``(N, C)``; overwritten (mmcv's wrapper multiplies by
            the incoming gradient afterwards).
        gamma: Focusing exponent.
        alpha: Balance factor.
    """
    _check_softmax(input, target, weight)
    prob, p_t, row_weight, counted = _softmax_focal_parts(
        input, target, weight)
    log_p = p_t.clamp(min=_FLT_MIN).log()
    factor = alpha * (gamma * (1 - p_t).pow(gamma - 1) * p_t * log_p -
                      (1 - p_t).pow(gamma))
    factor = torch.where(counted, factor * row_weight, 0)
    buff.copy_(factor)
    onehot = F.one_hot(target.clamp(min=0), prob.size(1)).to(prob.dtype)
    grad = factor[:, None] * (onehot - prob)
    grad_input.copy_(torch.where(counted[:, None], grad, 0))
