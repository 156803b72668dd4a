"""Deformable RoI pooling with the signatures of mmcv's
``_ext.deform_roi_pool_forward`` and ``_ext.deform_roi_pool_backward``
(``DeformRoIPool``, ``DeformRoIPoolPack``, ``ModulatedDeformRoIPoolPack``;
the modulated one multiplies by its mask in Python, outside the op).

mmcv has a CUDA kernel only (``deform_roi_pool_cuda_kernel.cuh``, with
``bilinear_interpolate`` and ``bilinear_interpolate_gradient`` from
``common_cuda_helper.hpp``); this follows it. For RoI ``k`` with corners
``(x1, y1, x2, y2)``, scale ``s`` and a ``PH x PW`` output:

- ``start = corner * s - 0.5`` (not rounded), ``roi_w = x2 * s - 0.5 -
  start_w``, bins of ``roi_w / PW`` by ``roi_h / PH``;
- sampling grid per bin ``gh x gw``: ``sampling_ratio`` if positive, else
  ``ceil(roi_h / PH)`` by ``ceil(roi_w / PW)`` per RoI (the kernel's
  ``ceilf``, i.e. taken in float32 also for double; 0 or less samples
  nothing and outputs 0);
- with an offset ``(K, 2, PH, PW)`` the bin ``(ph, pw)`` moves by
  ``gamma * roi_w * offset[k, 0, ph, pw]`` along x and ``gamma * roi_h *
  offset[k, 1, ph, pw]`` along y (the bin keeps its size). An empty offset
  means none (mmcv passes its null data pointer);
- sample ``(iy, ix)`` at ``y = start_h + ph * bin_h + (iy + 0.5) * bin_h /
  gh`` (x alike), read bilinearly: 0 if ``y < -1``, ``y > H``, ``x < -1`` or
  ``x > W``; otherwise the coordinates are clamped to ``[0, H - 1]`` and
  ``[0, W - 1]`` before the weights are taken;
- the output is the mean over the ``gh * gw`` samples.

``spatial_scale`` and ``gamma`` reach the kernel as C floats, so they are
rounded to float32 first, also for double inputs.

The backward follows the kernel's formula, which is not the derivative of
the forward everywhere. With ``g = grad_output / (gh * gw)`` per sample:
the input gradient gives ``g`` times the four bilinear weights to the
four pixels; the offset gradient is, summed over channels and samples,
``gamma * roi_w * g * (v11 * (y - y0) + v10 * (y1 - y) + v01 * (y0 - y) +
v00 * (y - y1))`` along x and ``gamma * roi_h * g * (v11 * (x - x0) +
v01 * (x1 - x) + v10 * (x0 - x) + v00 * (x - x1))`` along y. Here
``y0``/``y1`` and ``x0``/``x1`` are the clamped corner rows and columns,
``vab`` the pixel in column ``xa`` and row ``yb`` (mmcv's ``input_ab``:
``v10`` is ``(y0, x1)``), and ``x``, ``y`` the unclamped sample
coordinates. Inside, ``0 <= y < H - 1`` and ``0 <= x < W - 1``, this is
the exact derivative. Where the forward clamped a coordinate it is not:
for ``-1 <= y < 0`` the x-part extrapolates rows 0 and 1 to ``y`` and the
y-part is nonzero though the forward does not move with y; for
``y >= H - 1`` the x-part is 0 (both rows are the last one) and the y-part
is 0 as it should be; x alike. Kept as mmcv has it. Samples that read 0
give no gradient.

Buffers as mmcv fills them: the forward writes over ``output``; the
backward adds (``atomicAdd``) to ``grad_input`` and ``grad_offset``
(mmcv's wrapper passes them zeroed).

Samples are enumerated flat (RoI, bin, sample) and processed in chunks of
at most ``_BUDGET`` corner-channel pairs: the corner pixels are gathered
from a channels-last copy of the input by computed row indices (and the
input gradient scattered back the same way), so the work is the kernel's
and memory stays bounded. Half-precision inputs are computed in float32
and written back in the buffers' dtype.
"""
from typing import Iterator, NamedTuple, Tuple

import torch
from torch import Tensor

from . import compute_dtype

#: Most (corner pixel, channel) pairs gathered at once.
_BUDGET = 1 << 24


class _Rois(NamedTuple):
    """Per-RoI geometry in the compute dtype, as the kernel derives it."""

    batch: Tensor  # (K,) long: the image of each RoI
    start_h: Tensor  # (K, PH, PW): top of the RoI, moved by the offset
    start_w: Tensor  # (K, PH, PW)
    roi_h: Tensor  # (K,)
    roi_w: Tensor  # (K,)
    bin_h: Tensor  # (K,)
    bin_w: Tensor  # (K,)
    grid_h: Tensor  # (K,) long, >= 0: samples per bin along y
    grid_w: Tensor  # (K,) long, >= 0
    gamma: Tensor  # 0-d


class _Samples(NamedTuple):
    """A chunk of samples that read the map, with their bilinear corners."""

    bin: Tensor  # flat bin index k * PH * PW + ph * PW + pw
    roi: Tensor  # k
    y: Tensor  # unclamped sample coordinates
    x: Tensor
    y0: Tensor  # clamped corner rows and columns, in the compute dtype
    y1: Tensor
    x0: Tensor
    x1: Tensor
    # (4, n): the corners (y0, x0), (y0, x1), (y1, x0), (y1, x1) as rows
    # ``(batch * H + row) * W + column`` of the channels-last input, and
    # their bilinear weights.
    pixels: Tensor
    weights: Tensor


def _c_float(value: float, dtype: torch.dtype) -> Tensor:
    """``value`` as the kernel sees it: a C float cast to ``scalar_t``."""
    return torch.tensor(value, dtype=torch.float32).to(dtype)


def _check(op: str, input: Tensor, rois: Tensor, offset: Tensor,
           pooled_height: int, pooled_width: int) -> None:
    if input.dim() != 4:
        raise ValueError(f'{op}: input must be (N, C, H, W), got '
                         f'{tuple(input.shape)}')
    if rois.dim() != 2 or rois.size(1) != 5:
        raise ValueError(
            f'{op}: rois must be (K, 5) rows of (batch index, x1, y1, x2, '
            f'y2), got {tuple(rois.shape)}')
    if pooled_height < 1 or pooled_width < 1:
        raise ValueError(f'{op}: output size must be positive, got '
                         f'({pooled_height}, {pooled_width})')
    expected = (rois.size(0), 2, pooled_height, pooled_width)
    if offset.numel() and tuple(offset.shape) != expected:
        raise ValueError(
            f'{op}: offset {tuple(offset.shape)} must be (K, 2, pooled_h, '
            f'pooled_w) = {expected}, or empty for no offset')
    if rois.size(0) and (input.size(2) == 0 or input.size(3) == 0):
        raise ValueError(f'{op}: cannot pool RoIs from an empty map '
                         f'{tuple(input.shape)}')
    if rois.size(0):
        # The kernel truncates the index to int and reads that image.
        batch = rois[:, 0].long()
        if bool(((batch < 0) | (batch >= input.size(0))).any()):
            raise ValueError(
                f'{op}: RoI batch indices must lie in [0, {input.size(0)}) '
                f'for input {tuple(input.shape)}, got '
                f'{rois[:, 0].unique().tolist()}')


def _check_buffer(op: str, name: str, buffer: Tensor,
                  expected: Tuple[int, ...]) -> None:
    if tuple(buffer.shape) != tuple(expected):
        raise ValueError(f'{op}: {name} must be {tuple(expected)}, got '
                         f'{tuple(buffer.shape)}')


def _geometry(rois: Tensor, offset: Tensor, pooled_height: int,
              pooled_width: int, spatial_scale: float, sampling_ratio: int,
              gamma: float, dtype: torch.dtype) -> _Rois:
    boxes = rois.to(dtype)
    scale = _c_float(spatial_scale, dtype)
    start_w, start_h = boxes[:, 1] * scale - 0.5, boxes[:, 2] * scale - 0.5
    roi_w = (boxes[:, 3] * scale - 0.5) - start_w
    roi_h = (boxes[:, 4] * scale - 0.5) - start_h
    bin_h, bin_w = roi_h / pooled_height, roi_w / pooled_width
    if sampling_ratio > 0:
        grid_h = torch.full_like(roi_h, sampling_ratio, dtype=torch.long)
        grid_w = grid_h
    else:
        # ceilf: in float32 whatever scalar_t is.
        grid_h = (roi_h / pooled_height).float().ceil().long().clamp(min=0)
        grid_w = (roi_w / pooled_width).float().ceil().long().clamp(min=0)
    shape = (rois.size(0), pooled_height, pooled_width)
    start_h = start_h[:, None, None].expand(shape)
    start_w = start_w[:, None, None].expand(shape)
    gamma_t = _c_float(gamma, dtype)
    if offset.numel():
        offset = offset.to(dtype)
        start_w = start_w + gamma_t * roi_w[:, None, None] * offset[:, 0]
        start_h = start_h + gamma_t * roi_h[:, None, None] * offset[:, 1]
    return _Rois(rois[:, 0].long(), start_h, start_w, roi_h, roi_w, bin_h,
                 bin_w, grid_h, grid_w, gamma_t)


def _corners(coord: Tensor,
             size: int) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
    """mmcv's clamping along one axis: the low and high pixel and the
    weights of the low (``1 - l``) and high (``l``) one."""
    coord = coord.clamp(min=0)
    low = coord.long()  # coord >= 0: truncation is floor
    last = low >= size - 1
    low = low.clamp(max=size - 1)
    high = torch.where(last, low, low + 1)
    frac = torch.where(last, torch.zeros_like(coord), coord - low)
    return low, high, 1 - frac, frac


def _samples(geo: _Rois, pooled_height: int, pooled_width: int,
             channels: int, height: int,
             width: int) -> Iterator[_Samples]:
    """The samples that read the map, chunk by chunk."""
    bins_per_roi = pooled_height * pooled_width
    per_bin = (geo.grid_h * geo.grid_w).repeat_interleave(bins_per_roi)
    if per_bin.numel() == 0:
        return
    ends = per_bin.cumsum(0)
    total = int(ends[-1])
    step = max(1, _BUDGET // (4 * max(channels, 1)))
    dtype = geo.roi_h.dtype
    for first in range(0, total, step):
        index = torch.arange(first, min(first + step, total),
                             device=ends.device)
        bin = torch.searchsorted(ends, index, right=True)
        within = index - (ends[bin] - per_bin[bin])
        roi = bin // bins_per_roi
        ph = (bin // pooled_width) % pooled_height
        pw = bin % pooled_width
        grid_h, grid_w = geo.grid_h[roi], geo.grid_w[roi]
        iy, ix = within // grid_w, within % grid_w
        bin_h, bin_w = geo.bin_h[roi], geo.bin_w[roi]
        # The kernel's order of operations.
        y = (geo.start_h[roi, ph, pw] + ph.to(dtype) * bin_h +
             (iy.to(dtype) + 0.5) * bin_h / grid_h.to(dtype))
        x = (geo.start_w[roi, ph, pw] + pw.to(dtype) * bin_w +
             (ix.to(dtype) + 0.5) * bin_w / grid_w.to(dtype))
        inside = (y >= -1) & (y <= height) & (x >= -1) & (x <= width)
        keep = inside.nonzero().squeeze(1)
        bin, roi, y, x = bin[keep], roi[keep], y[keep], x[keep]
        y0, y1, hy, ly = _corners(y, height)
        x0, x1, hx, lx = _corners(x, width)
        top, bottom = ((geo.batch[roi] * height + row) * width
                       for row in (y0, y1))
        pixels = torch.stack([top + x0, top + x1, bottom + x0, bottom + x1])
        weights = torch.stack([hy * hx, hy * lx, ly * hx, ly * lx])
        yield _Samples(bin, roi, y, x, y0.to(dtype), y1.to(dtype),
                       x0.to(dtype), x1.to(dtype), pixels, weights)


def _channels_last(input: Tensor, dtype: torch.dtype) -> Tensor:
    """``input`` as a ``(N * H * W, C)`` table of pixels."""
    return input.permute(0, 2, 3, 1).to(dtype).reshape(-1, input.size(1))


def _gather(table: Tensor, s: _Samples) -> Tensor:
    """The four corner pixels of each sample, ``(4, n, C)``."""
    return table.index_select(0, s.pixels.flatten()).view(
        4, -1, table.size(1))


def _count(geo: _Rois, bins_per_roi: int, dtype: torch.dtype) -> Tensor:
    """Samples per bin ``(K * PH * PW, 1)``, at least 1 (the forward's
    ``max(count, 1)``; a bin with none gets no gradient anyway)."""
    count = (geo.grid_h * geo.grid_w).clamp(min=1).to(dtype)
    return count.repeat_interleave(bins_per_roi)[:, None]


def deform_roi_pool_forward(input: Tensor, rois: Tensor, offset: Tensor,
                            output: Tensor, pooled_height: int,
                            pooled_width: int, spatial_scale: float,
                            sampling_ratio: int, gamma: float) -> None:
    """Deformable RoI pooling of ``input`` into ``output`` (written over).

    Args:
        input: ``(N, C, H, W)`` feature map.
        rois: ``(K, 5)`` rows ``(batch index, x1, y1, x2, y2)`` in image
            pixels.
        offset: ``(K, 2, pooled_height, pooled_width)`` bin shifts in units
            of ``gamma`` times the RoI's width (channel 0) and height
            (channel 1); empty for none.
        output: ``(K, C, pooled_height, pooled_width)``; overwritten.
        pooled_height: Bins along the height.
        pooled_width: Bins along the width.
        spatial_scale: Feature-map pixels per image pixel.
        sampling_ratio: Samples per bin along each axis; 0 or less picks
            ``ceil`` of the bin size per RoI.
        gamma: Factor on the offset.
    """
    op = 'deform_roi_pool_forward'
    _check(op, input, rois, offset, pooled_height, pooled_width)
    num_rois, channels, height, width = (rois.size(0), *input.shape[1:])
    _check_buffer(op, 'output', output,
                  (num_rois, channels, pooled_height, pooled_width))
    dtype = compute_dtype(input.dtype)
    geo = _geometry(rois, offset, pooled_height, pooled_width,
                    spatial_scale, sampling_ratio, gamma, dtype)
    bins_per_roi = pooled_height * pooled_width
    sums = input.new_zeros((num_rois * bins_per_roi, channels), dtype=dtype)
    table = _channels_last(input, dtype) if num_rois else None
    for s in _samples(geo, pooled_height, pooled_width, channels, height,
                      width):
        value = (s.weights[..., None] * _gather(table, s)).sum(0)
        sums.index_add_(0, s.bin, value)
    pooled = sums / _count(geo, bins_per_roi, dtype)
    output.copy_(
        pooled.view(num_rois, pooled_height, pooled_width,
                    channels).permute(0, 3, 1, 2))


def deform_roi_pool_backward(grad_output: Tensor, input: Tensor, rois: Tensor,
                             offset: Tensor, grad_input: Tensor,
                             grad_offset: Tensor, pooled_height: int,
                             pooled_width: int, spatial_scale: float,
                             sampling_ratio: int, gamma: float) -> None:
    """Gradients of :func:`deform_roi_pool_forward` by mmcv's formula (see
    the module docstring), added to ``grad_input`` and, with an offset,
    to ``grad_offset``.

    Args:
        grad_output: ``(K, C, pooled_height, pooled_width)``.
        input: The forward's ``(N, C, H, W)`` input.
        rois: The forward's ``(K, 5)`` RoIs.
        offset: The forward's offset, or empty.
        grad_input: ``(N, C, H, W)``; added to.
        grad_offset: The shape of ``offset``; added to (left alone when
            ``offset`` is empty).
        pooled_height: Bins along the height.
        pooled_width: Bins along the width.
        spatial_scale: Feature-map pixels per image pixel.
        sampling_ratio: As in the forward.
        gamma: Factor on the offset.
    """
    op = 'deform_roi_pool_backward'
    _check(op, input, rois, offset, pooled_height, pooled_width)
    num_rois, channels, height, width = (rois.size(0), *input.shape[1:])
    _check_buffer(op, 'grad_output', grad_output,
                  (num_rois, channels, pooled_height, pooled_width))
    _check_buffer(op, 'grad_input', grad_input, input.shape)
    _check_buffer(op, 'grad_offset', grad_offset, offset.shape)
    dtype = compute_dtype(grad_output.dtype)
    geo = _geometry(rois, offset, pooled_height, pooled_width,
                    spatial_scale, sampling_ratio, gamma, dtype)
    bins_per_roi = pooled_height * pooled_width
    per_sample = (grad_output.to(dtype).permute(0, 2, 3, 1).reshape(
        -1, channels) / _count(geo, bins_per_roi, dtype))
    has_offset = offset.numel() > 0
    table = _channels_last(input, dtype) if has_offset and num_rois else None
    grads = input.new_zeros((input.numel() // max(channels, 1), channels),
                            dtype=dtype)
    moves = input.new_zeros((2, num_rois * bins_per_roi), dtype=dtype)
    for s in _samples(geo, pooled_height, pooled_width, channels, height,
                      width):
        grad = per_sample.index_select(0, s.bin)
        grads.index_add_(0, s.pixels.flatten(),
                         (s.weights[..., None] * grad).flatten(0, 1))
        if has_offset:
            # Each corner pixel dotted with the gradient over channels.
            v00, v10, v01, v11 = (_gather(table, s) * grad).sum(-1)
            y, x, y0, y1, x0, x1 = s.y, s.x, s.y0, s.y1, s.x0, s.x1
            along_x = (v11 * (y - y0) + v10 * (y1 - y) + v01 * (y0 - y) +
                       v00 * (y - y1))
            along_y = (v11 * (x - x0) + v01 * (x1 - x) + v10 * (x0 - x) +
                       v00 * (x - x1))
            moves[0].index_add_(0, s.bin,
                                geo.gamma * geo.roi_w[s.roi] * along_x)
            moves[1].index_add_(0, s.bin,
                                geo.gamma * geo.roi_h[s.roi] * along_y)
    grad_input.add_(
        grads.view(input.size(0), height, width,
                   channels).permute(0, 3, 1, 2))
    if has_offset:
        grad_offset.add_(
            moves.view(2, num_rois, pooled_height,
                       pooled_width).transpose(0, 1))
