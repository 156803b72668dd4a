"""NMS matching with the signature of mmcv's ``_ext.nms_match``.

It follows mmcv's CPU kernel (``nms_match_cpu`` in
``csrc/pytorch/cpu/nms.cpp``; mmcv has no other): the boxes are visited in
the order of ``scores.sort(0, descending=True)`` (torch's sort, which is
not stable: among equal scores its order decides, and the same call on the
same device is made here); each box not yet suppressed is kept and
suppresses every later, not yet suppressed box whose IoU with it is at
least ``iou_threshold`` (``>=``, unlike ``nms``'s ``>``). The IoU has no
``+1`` offset: ``w = max(0, min(x2, x2') - max(x1, x1'))`` and
``area = (x2 - x1) * (y2 - y1)``, all in float32 with the threshold
rounded to a C float; a zero union gives ``nan``, which suppresses nothing.

The result is one group per kept box, in the order they were kept: the
kept box's index, then those of the boxes it suppressed, in visiting
order, as lists of Python ints (mmcv's wrapper turns each into an int64
tensor or array). Each step is vectorised over the boxes still in play;
the steps, one per kept box, run one after another. On CUDA, torch's sort
may order ties differently than on CPU, where mmcv's kernel runs.
"""
from typing import List

import torch
from torch import Tensor


def _max(a: Tensor, b: Tensor) -> Tensor:
    """``std::max(a, b)``, NaN included: ``b if a < b else a``."""
    return torch.where(a < b, b, a)


def _min(a: Tensor, b: Tensor) -> Tensor:
    """``std::min(a, b)``, NaN included: ``b if b < a else a``."""
    return torch.where(b < a, b, a)


def nms_match(dets: Tensor, iou_threshold: float) -> List[List[int]]:
    """Group the boxes by greedy NMS: each kept box with those it
    suppresses.

    Args:
        dets: ``(N, 5)`` rows of ``x1, y1, x2, y2, score``; not modified.
        iou_threshold: A box joins a kept box's group when their IoU is at
            least this.

    Returns:
        One list of indices into ``dets`` per kept box, highest score
        first: the kept box, then the boxes it suppressed by score.
    """
    if dets.dim() != 2 or dets.size(1) != 5:
        raise ValueError('nms_match expects dets (N, 5) rows of (x1, y1, x2, '
                         f'y2, score), got shape {tuple(dets.shape)}')
    if dets.size(0) == 0:
        return []
    x1, y1, x2, y2, scores = dets.detach().to(torch.float32).unbind(1)
    area = (x2 - x1) * (y2 - y1)
    order = scores.contiguous().sort(0, descending=True)[1]
    threshold = torch.tensor(iou_threshold, dtype=torch.float32,
                             device=dets.device)
    # Boxes still in play, in visiting order: x1, y1, x2, y2, area.
    live = torch.stack([x1, y1, x2, y2, area], 1)[order]
    groups = []
    zero = live.new_zeros(())
    while order.numel():
        box, rest = live[0], live[1:]
        w = _max(zero, _min(box[2], rest[:, 2]) - _max(box[0], rest[:, 0]))
        h = _max(zero, _min(box[3], rest[:, 3]) - _max(box[1], rest[:, 1]))
        inter = w * h
        matched = inter / (box[4] + rest[:, 4] - inter) >= threshold
        groups.append(torch.cat([order[:1], order[1:][matched]]))
        order, live = order[1:][~matched], rest[~matched]
    return [group.tolist() for group in groups]
