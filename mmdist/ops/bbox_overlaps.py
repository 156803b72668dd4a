"""Box overlaps with the signature of mmcv's ``_ext.bbox_overlaps``.

For boxes ``(x1, y1, x2, y2)`` and ``offset`` 0 or 1 (pixel boxes whose
width is ``x2 - x1 + 1``), as mmcv's CPU kernel (``bbox_overlaps_cpu.cpp``,
itself a few torch ops) computes them::

    w = clamp(min(x2, x2') - max(x1, x1') + offset, 0, 2**31)
    h = clamp(min(y2, y2') - max(y1, y1') + offset, 0, 2**31)
    area = (x2 - x1 + offset) * (y2 - y1 + offset)
    IoU (mode 0) = w * h / (area + area' - w * h)
    IoF (mode 1) = w * h / area

for every pair (``aligned=False``, ``ious`` ``(M, N)``) or row by row
(``aligned=True``, ``ious`` ``(M,)``). The same torch operations run here in
the same order, so float32 and float64 results are bit for bit the CPU
kernel's, and ``ious`` is overwritten as the kernel's ``copy_`` does.

Degenerate boxes follow the CPU kernel, which has no epsilon: a zero union
gives ``0 / 0 = nan`` (two identical zero-size boxes at offset 0) and
inverted boxes give what the formula gives. mmcv's CUDA kernel differs
there: it divides by ``max(union, offset)`` (``max(area1, offset)`` for
IoF), which at offset 1 keeps the divisor at least 1 and at offset 0 turns
negative unions (inverted boxes) into 0 (``nan`` or ``inf``). The CPU
kernel is followed on every device.

Half-precision inputs (``--amp``) are computed in float32 and written back
as half. mmcv computes them in half, op by op, whose areas overflow to
``inf`` above 65504 (boxes over ~256 pixels a side).
"""
import torch
from torch import Tensor

from . import compute_dtype

#: Pairs computed at once when ``aligned=False`` (bounds the temporaries,
#: a few ``(rows, N)`` tensors, on large inputs).
_CHUNK = 1 << 22
#: The CPU kernel's upper clamp of widths, ``INT_MAX * 1.f``.
_INT_MAX_F = 2.0**31


def _as_boxes(boxes: Tensor, name: str) -> Tensor:
    if boxes.dim() == 2 and boxes.size(1) == 4:
        return boxes
    if boxes.numel() == 0 and boxes.size(0) == 0:
        # mmcv's wrapper lets any empty shape through.
        return boxes.reshape(0, 4)
    raise ValueError(f'bbox_overlaps expects {name} (N, 4) rows of (x1, y1, '
                     f'x2, y2), got shape {tuple(boxes.shape)}')


def _areas(boxes: Tensor, offset: int) -> Tensor:
    return (boxes[:, 2] - boxes[:, 0] + offset) * (
        boxes[:, 3] - boxes[:, 1] + offset)


def _overlaps(boxes1: Tensor, boxes2: Tensor, area1: Tensor, area2: Tensor,
              mode: int, offset: int) -> Tensor:
    """The kernel's formula for broadcast ``boxes1``/``boxes2`` (``area1``
    and ``area2`` broadcast alike)."""
    lt = torch.max(boxes1[..., :2], boxes2[..., :2])
    rb = torch.min(boxes1[..., 2:], boxes2[..., 2:])
    wh = (rb - lt + offset).clamp(0., _INT_MAX_F)
    overlap = wh[..., 0] * wh[..., 1]
    if mode == 0:
        return overlap / (area1 + area2 - overlap)
    return overlap / area1


def bbox_overlaps(bboxes1: Tensor, bboxes2: Tensor, ious: Tensor, mode: int,
                  aligned: bool, offset: int) -> None:
    """Write the IoU (or IoF) of ``bboxes1`` with ``bboxes2`` into ``ious``.

    Args:
        bboxes1: ``(M, 4)`` boxes ``x1, y1, x2, y2``.
        bboxes2: ``(N, 4)`` boxes; ``N == M`` when ``aligned``.
        ious: Output buffer, overwritten: ``(M, N)``, or ``(M,)`` when
            ``aligned``.
        mode: 0 for intersection over union, 1 for intersection over the
            area of the ``bboxes1`` box (IoF).
        aligned: Pair row ``i`` of ``bboxes1`` with row ``i`` of
            ``bboxes2`` only, instead of every pair.
        offset: 0, or 1 for boxes whose width is ``x2 - x1 + 1``.
    """
    boxes1 = _as_boxes(bboxes1, 'bboxes1')
    boxes2 = _as_boxes(bboxes2, 'bboxes2')
    rows, cols = boxes1.size(0), boxes2.size(0)
    if mode not in (0, 1):
        raise ValueError(f'bbox_overlaps mode must be 0 (iou) or 1 (iof), '
                         f'got {mode!r}')
    if offset not in (0, 1):
        raise ValueError(f'bbox_overlaps offset must be 0 or 1, got '
                         f'{offset!r}')
    if aligned and rows != cols:
        raise ValueError('bbox_overlaps with aligned=True needs as many '
                         f'bboxes1 as bboxes2, got {rows} and {cols}')
    expected = (rows, ) if aligned else (rows, cols)
    if tuple(ious.shape) != expected:
        raise ValueError(f'bbox_overlaps ious buffer must be '
                         f'{"(M,)" if aligned else "(M, N)"} = {expected}, '
                         f'got {tuple(ious.shape)}')
    if ious.numel() == 0:
        return
    dtype = compute_dtype(torch.promote_types(boxes1.dtype, boxes2.dtype))
    boxes1, boxes2 = boxes1.to(dtype), boxes2.to(dtype)
    area1, area2 = _areas(boxes1, offset), _areas(boxes2, offset)
    if aligned:
        ious.copy_(_overlaps(boxes1, boxes2, area1, area2, mode, offset))
        return
    step = max(1, _CHUNK // cols)
    for start in range(0, rows, step):
        part = slice(start, start + step)
        ious[part].copy_(
            _overlaps(boxes1[part, None], boxes2, area1[part, None], area2,
                      mode, offset))
