"""PSANet's point-wise spatial attention masks (mmcv's ``PSAMask``) with the
signatures of mmcv's ``_ext.psamask_forward`` and ``_ext.psamask_backward``.

The input holds, for every pixel ``(h, w)`` of an ``H x W`` map, an
``h_mask x w_mask`` window of attention weights centred (at
``(half_h_mask, half_w_mask)``) on that pixel: channel
``hidx * w_mask + widx`` is the neighbour ``(h + dy, w + dx)`` with
``dy = hidx - half_h_mask`` and ``dx = widx - half_w_mask``. The op spreads
each window over the whole map, into an ``(N, H * W, H, W)`` buffer. For
every neighbour inside the map (``0 <= h + dy < H`` and
``0 <= w + dx < W``):

- collect (``psa_type`` 0):
  ``out[n, (h + dy) * W + (w + dx), h, w] = in[n, hidx * w_mask + widx, h, w]``
- distribute (``psa_type`` 1):
  ``out[n, h * W + w, h + dy, w + dx] = in[n, hidx * w_mask + widx, h, w]``

Window positions that fall off the map are dropped, and output elements no
window reaches are not written. This follows mmcv's kernels
(``csrc/pytorch/cpu/psamask.cpp`` and
``csrc/common/cuda/psamask_cuda_kernel.cuh``): each valid position is
assigned, nothing is added, and the map of window positions to output
elements is one-to-one. mmcv's wrapper passes a zeroed buffer, so the
output is 0 where nothing was written. The backward is the same
assignment read the other way: ``grad_input`` gets the gradient of each
valid window position, written over, and keeps what it held at positions
off the map (mmcv's wrapper zeroes it too).

mmcv's wrapper passes ``half_h_mask = (h_mask - 1) // 2`` (likewise for the
width), so an even-sized window reaches one pixel further down and right
than up and left (offsets ``-1 .. 2`` for a mask of 4). Any offset is
accepted here, as the kernels accept it. PSANet's usual mask,
``(2H - 1) x (2W - 1)`` over an ``H x W`` map, covers the whole map from
every pixel.

The work is an indexed copy: along each axis, the valid (pixel, window
position, neighbour) triples are listed once; the two axes' lists broadcast
against each other in one gather and one ``index_put_``, so no index tensor
of the output's size is built and only valid elements are touched. Being a
copy, it is exact in any dtype, half included (mmcv's CUDA kernel takes
float32 and float64 only).
"""
from typing import Tuple

import torch
from torch import Tensor

_TYPES = {0: 'collect', 1: 'distribute'}


def _axis(size: int, mask: int, half: int,
          device: torch.device) -> Tuple[Tensor, Tensor, Tensor]:
    """Along one axis, every pixel ``p``, window position ``m`` and the
    neighbour ``q = p + m - half`` it names that lies on the map, as three
    flat int64 tensors (mmcv's ``[hstart, hend)`` per pixel)."""
    pixel = torch.arange(size, device=device)[:, None]
    position = torch.arange(mask, device=device)[None, :]
    neighbour = pixel + position - half
    valid = (neighbour >= 0) & (neighbour < size)
    pixel_idx, position_idx = valid.nonzero(as_tuple=True)
    return pixel_idx, position_idx, neighbour[valid]


def _check(name: str, mask: Tensor, buffer: Tensor, psa_type: int, num_: int,
           h_feature: int, w_feature: int, h_mask: int, w_mask: int,
           mask_name: str, buffer_name: str) -> None:
    if psa_type not in _TYPES:
        raise ValueError(f'{name}: psa_type must be 0 (collect) or 1 '
                         f'(distribute), got {psa_type!r}')
    if min(num_, h_feature, w_feature, h_mask, w_mask) < 0:
        raise ValueError(
            f'{name}: sizes must not be negative, got num_={num_}, '
            f'h_feature={h_feature}, w_feature={w_feature}, '
            f'h_mask={h_mask}, w_mask={w_mask}')
    expected = {
        mask_name: (num_, h_mask * w_mask, h_feature, w_feature),
        buffer_name: (num_, h_feature * w_feature, h_feature, w_feature),
    }
    layout = {mask_name: '(num_, h_mask * w_mask, h_feature, w_feature)',
              buffer_name: '(num_, h_feature * w_feature, h_feature, '
              'w_feature)'}
    for tensor_name, tensor in ((mask_name, mask), (buffer_name, buffer)):
        if tuple(tensor.shape) != expected[tensor_name]:
            raise ValueError(
                f'{name}: {tensor_name} {tuple(tensor.shape)} must be '
                f'{layout[tensor_name]} = {expected[tensor_name]}')
    if mask.dtype != buffer.dtype or mask.device != buffer.device:
        raise ValueError(
            f'{name}: {mask_name} ({mask.dtype}, {mask.device}) and '
            f'{buffer_name} ({buffer.dtype}, {buffer.device}) must share '
            'dtype and device')


def _indices(psa_type: int, h_feature: int, w_feature: int, h_mask: int,
             w_mask: int, half_h_mask: int, half_w_mask: int,
             device: torch.device) -> Tuple[tuple, tuple]:
    """Matching advanced indices into the window tensor
    ``(N, h_mask, w_mask, H, W)`` and the spread tensor ``(N, H, W, H, W)``,
    rows ``(R, 1)`` against columns ``(1, C)`` for the R valid row triples
    and C valid column triples."""
    h, hidx, hh = (t[:, None] for t in _axis(h_feature, h_mask, half_h_mask,
                                             device))
    w, widx, ww = (t[None, :] for t in _axis(w_feature, w_mask, half_w_mask,
                                             device))
    window = (slice(None), hidx, widx, h, w)
    if psa_type == 0:  # collect: neighbour's channel, at the pixel
        spread = (slice(None), hh, ww, h, w)
    else:  # distribute: pixel's channel, at the neighbour
        spread = (slice(None), h, w, hh, ww)
    return window, spread


def psamask_forward(input: Tensor, output: Tensor, psa_type: int, num_: int,
                    h_feature: int, w_feature: int, h_mask: int, w_mask: int,
                    half_h_mask: int, half_w_mask: int) -> None:
    """Spread each pixel's attention window over the map (see the module
    docstring for the formula).

    Args:
        input: ``(num_, h_mask * w_mask, h_feature, w_feature)`` windows.
        output: ``(num_, h_feature * w_feature, h_feature, w_feature)``;
            written over where a window position on the map lands, left as
            it was elsewhere (mmcv's wrapper passes zeros).
        psa_type: 0 collect, 1 distribute.
        num_: Batch size.
        h_feature: Map height ``H``.
        w_feature: Map width ``W``.
        h_mask: Window height.
        w_mask: Window width.
        half_h_mask: Window row of the pixel itself (mmcv passes
            ``(h_mask - 1) // 2``).
        half_w_mask: Window column of the pixel itself.
    """
    _check('psamask_forward', input, output, psa_type, num_, h_feature,
           w_feature, h_mask, w_mask, 'input', 'output')
    window, spread = _indices(psa_type, h_feature, w_feature, h_mask, w_mask,
                              half_h_mask, half_w_mask, input.device)
    # Splitting one dim is always a view: writes reach ``output``.
    spread_view = output.unflatten(1, (h_feature, w_feature))
    spread_view[spread] = input.unflatten(1, (h_mask, w_mask))[window]


def psamask_backward(grad_output: Tensor, grad_input: Tensor, psa_type: int,
                     num_: int, h_feature: int, w_feature: int, h_mask: int,
                     w_mask: int, half_h_mask: int, half_w_mask: int) -> None:
    """Gather each window position's gradient back from the spread map.

    Args:
        grad_output: ``(num_, h_feature * w_feature, h_feature,
            w_feature)``.
        grad_input: ``(num_, h_mask * w_mask, h_feature, w_feature)``;
            written over at window positions on the map, left as it was at
            those off it (mmcv's wrapper passes zeros).
        psa_type: 0 collect, 1 distribute.
        num_: Batch size.
        h_feature: Map height ``H``.
        w_feature: Map width ``W``.
        h_mask: Window height.
        w_mask: Window width.
        half_h_mask: Window row of the pixel itself.
        half_w_mask: Window column of the pixel itself.
    """
    _check('psamask_backward', grad_input, grad_output, psa_type, num_,
           h_feature, w_feature, h_mask, w_mask, 'grad_input', 'grad_output')
    window, spread = _indices(psa_type, h_feature, w_feature, h_mask, w_mask,
                              half_h_mask, half_w_mask, grad_input.device)
    window_view = grad_input.unflatten(1, (h_mask, w_mask))
    window_view[window] = grad_output.unflatten(1, (h_feature,
                                                    w_feature))[spread]
