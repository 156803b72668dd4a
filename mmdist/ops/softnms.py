"""Soft-NMS with the signature of mmcv's ``_ext.softnms``.

It follows mmcv's CPU kernel (``softnms_cpu`` in
``csrc/pytorch/cpu/nms.cpp``; mmcv has no other), step for step, since its
in-place bookkeeping decides the output order and which box wins a tie.
The kernel keeps the boxes in a working array, first in input order. Step
``i`` (for ``i`` below the current count ``n``):

1. the box of highest score in positions ``i .. n - 1`` (the first one in
   that order among equal scores, scanning with ``best < score``, so a NaN
   score is never picked unless it is at ``i``) is swapped with position
   ``i``; its coordinates and current score become row ``i`` of ``dets``;
2. every box at positions ``i + 1 .. n - 1`` has its score multiplied by a
   weight of its IoU ``o`` with that box (widths ``x2 - x1 + offset``):
   naive (0) ``0 if o >= iou_threshold else 1``, linear (1)
   ``1 - o if o >= iou_threshold else 1``, gaussian (2)
   ``exp(-(o * o) / sigma)``;
3. a box whose new score is below ``min_score`` is dropped: the kernel
   scans positions upward and moves the last box of the array into a
   dropped box's place (``n`` shrinks), then looks at that place again.

The output is the first ``n`` rows of ``dets`` and the input index of
each of those boxes. Step 3 is done here at once: each box gets its weight
once either way, so the kept boxes before the new end stay where they are
and the dropped places there are filled, lowest first, by the kept boxes
after it, last first, as the kernel's scan leaves them. A weight depends
on the two boxes only, so for up to ``_FULL`` boxes all of them are
computed at first, and each step only gathers its row.

Arithmetic is the kernel's: float32 throughout (boxes, areas, IoU,
scores), ``max``/``min`` as ``std::max``/``std::min`` (NaN included), the
thresholds, ``sigma`` and ``min_score`` rounded to C floats; the gaussian
weight is ``expf`` of the float32 quotient, computed as glibc computes it
(see ``_expf``). Inputs of other dtypes
are computed in float32 (the kernel accepts float32 only) and ``dets`` is
written in its own dtype. The work within a step is vectorised; the steps,
as in the kernel, run one after another.
"""
import torch
from torch import Tensor

#: ``method`` values: naive, linear, gaussian (mmcv's ``method_dict``).
_METHODS = (0, 1, 2)
#: Up to this many boxes, the ``(N, N)`` weights (16 MiB at most) are
#: computed before the steps (faster on CPU up to about this size); beyond
#: it, each step computes its row.
_FULL = 2048
#: Weights computed at once (bounds the temporaries).
_CHUNK = 1 << 22
#: glibc's ``expf`` (sysdeps/ieee754/flt-32/e_expf.c, from Arm's
#: optimized-routines): ``32 / ln 2``, ``2 ** (i / 32)`` for ``i < 32``
#: (correctly rounded doubles) and its cubic's coefficients for
#: ``2 ** (r / 32) - 1``, highest degree first.
_EXPF_INV_LN2_N = float.fromhex('0x1.71547652b82fep+0') * 32
_EXPF_TABLE = [2.0**(i / 32) for i in range(32)]
_EXPF_POLY = (float.fromhex('0x1.c6af84b912394p-5') / 32**3,
              float.fromhex('0x1.ebfce50fac4f3p-3') / 32**2,
              float.fromhex('0x1.62e42ff0c52d6p-1') / 32)


def _check(boxes: Tensor, scores: Tensor, dets: Tensor, method: int,
           offset: int) -> None:
    if boxes.dim() != 2 or boxes.size(1) != 4:
        raise ValueError('softnms expects boxes (N, 4) rows of (x1, y1, x2, '
                         f'y2), got shape {tuple(boxes.shape)}')
    count = boxes.size(0)
    if tuple(scores.shape) != (count, ):
        raise ValueError(f'softnms expects scores (N,) = ({count},), got '
                         f'shape {tuple(scores.shape)}')
    if tuple(dets.shape) != (count, 5):
        raise ValueError(f'softnms dets buffer must be (N, 5) = ({count}, '
                         f'5), got shape {tuple(dets.shape)}')
    if method not in _METHODS:
        raise ValueError('softnms method must be 0 (naive), 1 (linear) or 2 '
                         f'(gaussian), got {method!r}')
    if offset not in (0, 1):
        raise ValueError(f'softnms offset must be 0 or 1, got {offset!r}')


def _max(a: Tensor, b: Tensor) -> Tensor:
    """``std::max(a, b)``, NaN included: ``b if a < b else a``."""
    return torch.where(a < b, b, a)


def _min(a: Tensor, b: Tensor) -> Tensor:
    """``std::min(a, b)``, NaN included: ``b if b < a else a``."""
    return torch.where(b < a, b, a)


def _expf(x: Tensor) -> Tensor:
    """glibc's ``expf`` (the kernel's ``std::exp`` of a float), bit for bit:
    ``exp(x) = 2 ** (k / 32) * p(r)`` with ``k`` the integer nearest to
    ``32 x / ln 2``, ``r`` the rest and ``p`` its cubic, in float64, rounded
    once to float32. A float64 ``exp`` rounded to float32 differs from it
    in a few values in 10 000 (glibc's is within 0.502 ulp, not 0.5)."""
    xd = x.double().clamp(-150., 100.)  # beyond: 0 and inf, as glibc
    z = xd * _EXPF_INV_LN2_N
    kd = torch.round(z)  # to even, as glibc's shift by 1.5 * 2**52
    r = z - kd
    k = kd.long()
    table = torch.tensor(_EXPF_TABLE, dtype=torch.float64, device=x.device)
    scale = torch.ldexp(table[k % 32], k.div(32, rounding_mode='floor'))
    c0, c1, c2 = _EXPF_POLY
    y = (c0 * r + c1) * (r * r) + (c2 * r + 1)
    return torch.where(x.isnan(), x, (y * scale).float())


def _weights(picked: Tensor, others: Tensor, threshold: Tensor,
             sigma: Tensor, method: int, offset: int) -> Tensor:
    """``(P, Q)`` weights of the boxes ``others`` ``(Q, 5)`` against each
    picked box of ``picked`` ``(P, 5)`` (rows ``x1, y1, x2, y2, area``), in
    the kernel's float32 steps."""
    box, other = picked[:, None], others[None]
    lt = _max(box[..., :2], other[..., :2])
    rb = _min(box[..., 2:4], other[..., 2:4])
    wh = _max(box.new_zeros(()), rb - lt + offset)
    inter = wh[..., 0] * wh[..., 1]
    ovr = inter / (box[..., 4] + other[..., 4] - inter)
    if method == 2:
        return _expf((-(ovr * ovr)) / sigma)
    above = ovr >= threshold
    if method == 0:
        return (~above).float()
    return torch.where(above, 1 - ovr, torch.ones_like(ovr))


def _first_max(values: Tensor) -> Tensor:
    """The kernel's pick: the first of the highest values, scanning with
    ``best < value`` from ``values[0]``, so NaN is never picked unless it
    is ``values[0]``, which then stays."""
    head = values[:1]
    values = torch.where(values.isnan(), values.new_tensor(-float('inf')),
                         values)
    values[:1] = torch.where(head.isnan(), head.new_tensor(float('inf')),
                             values[:1])
    return values.argmax()


def _compaction(dropped: Tensor) -> Tensor:
    """Where the kernel's drop-and-swap scan leaves the kept boxes of a
    segment: the index, within the segment, of each of its new places."""
    length = dropped.numel()
    kept = length - int(dropped.sum())
    place = torch.arange(length, device=dropped.device)
    order = place[:kept].clone()
    holes = (dropped & (place < kept)).nonzero()[:, 0]
    fillers = (~dropped & (place >= kept)).nonzero()[:, 0]
    order[holes] = fillers.flip(0)
    return order


def softnms(boxes: Tensor, scores: Tensor, dets: Tensor,
            iou_threshold: float, sigma: float, min_score: float, method: int,
            offset: int) -> Tensor:
    """Soft-NMS: decay the scores of boxes overlapping higher-scored ones,
    dropping those that fall below ``min_score``.

    Args:
        boxes: ``(N, 4)`` boxes ``x1, y1, x2, y2``; not modified.
        scores: ``(N,)`` scores; not modified.
        dets: ``(N, 5)`` output buffer: its first ``K`` rows are overwritten
            with the kept boxes and their decayed scores, in the order they
            were picked; the rows after them are left as they were.
        iou_threshold: IoU from which the naive and linear methods decay a
            score.
        sigma: Width of the gaussian method's decay.
        min_score: Boxes whose decayed score is below it are dropped.
        method: 0 naive (hard NMS), 1 linear, 2 gaussian.
        offset: 0, or 1 for boxes whose width is ``x2 - x1 + 1``.

    Returns:
        ``(K,)`` int64 indices into ``boxes`` of the rows of ``dets``.
    """
    _check(boxes, scores, dets, method, offset)
    device, f32 = boxes.device, torch.float32
    count = boxes.size(0)
    if count == 0:
        return torch.empty(0, dtype=torch.long, device=device)
    x1, y1, x2, y2 = boxes.to(f32).unbind(1)
    area = (x2 - x1 + offset) * (y2 - y1 + offset)
    table = torch.stack([x1, y1, x2, y2, area], 1)
    threshold, sigma_t, min_score_t = (
        torch.tensor(value, dtype=f32, device=device)
        for value in (iou_threshold, sigma, min_score))
    # The kernel's working array: current scores and input indices.
    score = scores.to(f32, copy=True)
    inds = torch.arange(count, device=device)
    full = None
    nan_possible = True
    if count <= _FULL:
        full = table.new_empty(count, count)
        step = max(1, _CHUNK // count)
        for start in range(0, count, step):
            full[start:start + step] = _weights(table[start:start + step],
                                                table, threshold, sigma_t,
                                                method, offset)
        # Finite scores times weights in [-1, 1] stay finite: no NaN.
        nan_possible = not bool(score.isfinite().all()
                                and full.abs().le(1).all())
    i = 0
    while i < count:
        seg = score[i:count]
        best = i + int(_first_max(seg) if nan_possible else seg.argmax())
        if best != i:
            swap = torch.tensor([best, i], device=device)
            score[[i, best]] = score[swap]
            inds[[i, best]] = inds[swap]
        if i + 1 < count:
            others = inds[i + 1:count]
            if full is not None:
                weight = full[inds[i], others]
            else:
                weight = _weights(table[inds[i:i + 1]], table[others],
                                  threshold, sigma_t, method, offset)[0]
            rest = score[i + 1:count]
            rest *= weight
            dropped = rest < min_score_t
            if bool(dropped.any()):
                order = _compaction(dropped)
                end = i + 1 + order.numel()
                score[i + 1:end] = rest[order]
                inds[i + 1:end] = others[order]
                count = end
        i += 1
    dets[:count, :4] = table[inds[:count], :4]
    dets[:count, 4] = score[:count]
    return inds[:count]
