"""Several teachers' logits as one: the logits of their weighted mean
probability, for a logit loss (DIST, KD) that reads teacher logits.

With ``p_k = act(z_k / tau)`` for teacher ``k`` and weights ``w_k``::

    p = sum_k w_k p_k / sum_k w_k
    z = tau * act^-1(p)      softmax: log p;  sigmoid: log p - log(1 - p)

so that ``act(z / tau) = p``: the loss sees the ensemble's probabilities
exactly, to float rounding. ``p`` is kept off 0 (and 1, for sigmoid) by the
smallest float32 steps, so that ``z`` is finite.
"""
from typing import Optional, Sequence

import torch
from torch import Tensor

from .rows import check_activation


def _grouped(logits: Tensor, num_classes: Optional[int]) -> Tensor:
    """``(N, G, K, ...)``: the channel axis split into groups of
    ``num_classes`` (one softmax each), as the loss lays out its rows."""
    channels = logits.shape[1]
    classes = num_classes or channels
    if channels % classes:
        raise ValueError(f'num_classes={classes} must divide the '
                         f'{channels} channels of the teachers\' logits')
    return logits.unflatten(1, (channels // classes, classes))


def teacher_ensemble(logits: Sequence[Tensor], weights: Sequence[float],
                     tau: float = 1.0, activation: str = 'softmax',
                     num_classes: Optional[int] = None) -> Tensor:
    """The logits of the teachers' weighted mean probability.

    Args:
        logits: Each teacher's logits, all of one shape, (N, C) or
            (N, C, H, W).
        weights: Each teacher's weight (positive; normalised here).
        tau: The loss's temperature.
        activation: The loss's activation, ``'softmax'`` (over the classes
            of a row) or ``'sigmoid'``.
        num_classes: The loss's classes per row (a softmax over each group
            of that many channels); None: all channels.

    Returns:
        Float32 (float64 stays float64) logits of the same shape, detached.
    """
    check_activation(activation)
    if len(logits) != len(weights) or not logits:
        raise ValueError(f'{len(logits)} teachers\' logits and '
                         f'{len(weights)} weights: give one weight a teacher')
    if any(w <= 0 for w in weights):
        raise ValueError(f'teacher weights must be positive, got {weights}')
    shapes = {tuple(z.shape) for z in logits}
    if len(shapes) != 1:
        raise ValueError(f'the teachers\' logits must have one shape to be '
                         f'averaged, got {sorted(shapes)}')
    dtype = torch.float64 if logits[0].dtype == torch.float64 else \
        torch.float32
    total = float(sum(weights))
    mean = None
    with torch.no_grad():
        for z, w in zip(logits, weights):
            z = z.detach().to(dtype) / tau
            if activation == 'softmax':
                p = torch.softmax(_grouped(z, num_classes), dim=2).flatten(
                    1, 2)
            else:
                p = torch.sigmoid(z)
            mean = p * (w / total) if mean is None else mean.add_(
                p, alpha=w / total)
        tiny = torch.finfo(dtype).tiny
        if activation == 'softmax':
            return tau * mean.clamp_(min=tiny).log_()
        eps = torch.finfo(dtype).eps
        mean.clamp_(tiny, 1 - eps)
        return tau * (mean.log() - torch.log1p(-mean))
