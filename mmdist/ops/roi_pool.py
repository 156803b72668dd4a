"""RoIPool with the signatures of mmcv's ``_ext.roi_pool_forward`` and
``_ext.roi_pool_backward``.

mmcv's kernel (CUDA only; mmcv has no CPU one) and torchvision's RoIPool
divide a RoI into bins differently:

- mmcv keeps the scaled corners as they are, ``x1 * s`` to
  ``(x2 + 1) * s``, and a bin spans ``floor(x1 * s + pw * bin_w)`` to
  ``ceil(x1 * s + (pw + 1) * bin_w)`` with ``bin_w = roi_w / pooled_w``;
- torchvision rounds the corners to whole pixels first (Caffe's RoIPool),
  ``round(x1 * s)`` to ``round(x2 * s)``, and adds that start after the
  floor/ceil of ``pw * bin_w``.

They agree for whole-pixel corners at ``spatial_scale=1`` and differ by a
pixel elsewhere (a detector's fractional boxes at scale 1/16). So the bins
are computed here as mmcv computes them (in the input's dtype, as its
kernel does in ``scalar_t``), clipped to the feature map; each bin then
goes to ``torch.ops.torchvision.roi_pool`` as a RoI of its own, whole-pixel
box ``(x1, y1, x2 - 1, y2 - 1)`` pooled to 1x1 at scale 1, which takes the
maximum over exactly those pixels. The argmax is the same in both: the
flat index ``h * W + w`` of the first maximum in row-major order, int32,
-1 for an empty bin (whose output is 0).

Like mmcv's kernel, RoIs with ``roi_w <= 0`` or ``roi_h <= 0`` are
skipped: their output and argmax keep what the buffers held. mmcv's wrapper
zeroes both, so such a RoI outputs 0 and, argmax being 0 rather than -1,
its gradient goes to pixel ``(0, 0)``; this is kept, the backward reads
the argmax as mmcv's does. The backward adds into ``grad_input`` (mmcv's
``atomicAdd``).
"""
from typing import Tuple

import torch
from torch import Tensor

from . import compute_dtype


def _check(input: Tensor, rois: Tensor, output: Tensor, argmax: Tensor,
           pooled_height: int, pooled_width: int) -> None:
    if input.dim() != 4:
        raise ValueError('roi_pool expects input (N, C, H, W), got shape '
                         f'{tuple(input.shape)}')
    if rois.dim() != 2 or rois.size(1) != 5:
        raise ValueError(
            'roi_pool expects rois (K, 5) rows of (batch index, x1, y1, x2, '
            f'y2), got shape {tuple(rois.shape)}')
    if pooled_height < 1 or pooled_width < 1:
        raise ValueError('roi_pool output size must be positive, got '
                         f'({pooled_height}, {pooled_width})')
    expected = (rois.size(0), input.size(1), pooled_height, pooled_width)
    for name, buffer in (('output', output), ('argmax', argmax)):
        if tuple(buffer.shape) != expected:
            raise ValueError(f'roi_pool {name} buffer must be (K, C, '
                             f'pooled_h, pooled_w) = {expected}, got '
                             f'{tuple(buffer.shape)}')
    if argmax.dtype != torch.int32:
        raise ValueError('roi_pool argmax buffer must be int32 (as mmcv '
                         f'allocates it), got {argmax.dtype}')


def _edges(start: Tensor, bin_size: Tensor, bins: int,
           limit: int) -> Tuple[Tensor, Tensor]:
    """First and one-past-last pixel of each bin ``(K, bins)``, clipped to
    ``[0, limit]``, as mmcv's kernel computes them."""
    steps = torch.arange(bins + 1, dtype=start.dtype, device=start.device)
    # mmcv: floor(p * bin + start) and ceil((p + 1) * bin + start).
    position = steps * bin_size[:, None] + start[:, None]
    first = position[:, :-1].floor().clamp(0, limit).long()
    last = position[:, 1:].ceil().clamp(0, limit).long()
    return first, last


def roi_pool_forward(input: Tensor, rois: Tensor, output: Tensor,
                     argmax: Tensor, pooled_height: int, pooled_width: int,
                     spatial_scale: float) -> None:
    """Max-pool each RoI of ``input`` into ``output`` and record where each
    maximum came from in ``argmax``.

    Args:
        input: ``(N, C, H, W)`` feature map.
        rois: ``(K, 5)`` rows ``(batch index, x1, y1, x2, y2)`` in image
            pixels (inclusive corners).
        output: ``(K, C, pooled_height, pooled_width)``; written for every
            well-formed RoI.
        argmax: int32, the shape of ``output``; ``h * W + w`` of each
            maximum, -1 for empty bins.
        pooled_height: Bins along the height.
        pooled_width: Bins along the width.
        spatial_scale: Feature-map pixels per image pixel.
    """
    _check(input, rois, output, argmax, pooled_height, pooled_width)
    num_rois, channels = rois.size(0), input.size(1)
    height, width = input.shape[2:]
    if num_rois == 0:
        return
    # mmcv's kernel works in the input's type, the float scale cast to it.
    dtype = input.dtype
    boxes = rois.to(dtype)
    scale = torch.tensor(spatial_scale, dtype=torch.float32).to(dtype)
    x1, y1 = boxes[:, 1] * scale, boxes[:, 2] * scale
    x2, y2 = (boxes[:, 3] + 1) * scale, (boxes[:, 4] + 1) * scale
    roi_w, roi_h = x2 - x1, y2 - y1
    well_formed = (roi_w > 0) & (roi_h > 0)
    col_first, col_last = _edges(x1, roi_w / pooled_width, pooled_width,
                                 width)
    row_first, row_last = _edges(y1, roi_h / pooled_height, pooled_height,
                                 height)

    # One 1x1 torchvision RoI per bin, (K, PH, PW, 5), in whole pixels.
    shape = (num_rois, pooled_height, pooled_width)
    compute = compute_dtype(dtype)
    bins = torch.stack([
        rois[:, 0, None, None].to(compute).expand(shape),
        col_first[:, None, :].expand(shape),
        row_first[:, :, None].expand(shape),
        col_last[:, None, :].expand(shape) - 1,
        row_last[:, :, None].expand(shape) - 1,
    ], dim=-1).to(compute).reshape(-1, 5)
    import torchvision  # noqa: F401  registers torch.ops.torchvision
    pooled, where = torch.ops.torchvision.roi_pool(input.to(compute), bins,
                                                   1.0, 1, 1)
    pooled = pooled.view(*shape, channels).permute(0, 3, 1, 2)
    where = where.view(*shape, channels).permute(0, 3, 1, 2)
    # torchvision makes an empty box one pixel wide; mmcv pools nothing.
    empty = ((row_last <= row_first)[:, :, None] |
             (col_last <= col_first)[:, None, :])[:, None]
    pooled = pooled.masked_fill(empty, 0)
    where = where.masked_fill(empty, -1)
    # Malformed RoIs keep the buffers' contents (no device sync to ask).
    keep = ~well_formed[:, None, None, None]
    output.copy_(torch.where(keep, output, pooled.to(output.dtype)))
    argmax.copy_(torch.where(keep, argmax, where))


def roi_pool_backward(grad_output: Tensor, rois: Tensor, argmax: Tensor,
                      grad_input: Tensor, pooled_height: int,
                      pooled_width: int, spatial_scale: float) -> None:
    """Add each output gradient to the input element its ``argmax`` names
    (none for -1), in the RoI's batch image.

    Args:
        grad_output: ``(K, C, pooled_height, pooled_width)``.
        rois: The forward's ``(K, 5)`` RoIs (only the batch index is read).
        argmax: The forward's int32 argmax.
        grad_input: ``(N, C, H, W)``; added to.
        pooled_height: Bins along the height.
        pooled_width: Bins along the width.
        spatial_scale: The forward's scale (not needed here).
    """
    import torchvision  # noqa: F401  registers torch.ops.torchvision
    if argmax.dtype != torch.int32:
        raise ValueError('roi_pool argmax must be int32 (as mmcv allocates '
                         f'it), got {argmax.dtype}')
    if rois.size(0) == 0:
        return
    batch, channels, height, width = grad_input.shape
    compute = compute_dtype(grad_output.dtype)
    grad_input.add_(
        torch.ops.torchvision._roi_pool_backward(
            grad_output.to(compute), rois.to(compute), argmax,
            spatial_scale, pooled_height, pooled_width, batch, channels,
            height, width))
