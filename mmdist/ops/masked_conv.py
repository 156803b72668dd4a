"""Masked convolution's unfold and fold with the signatures of mmcv's
``_ext.masked_im2col_forward`` and ``_ext.masked_col2im_forward``.

mmcv's ``MaskedConv2dFunction`` (used at test time by mmdet's guided
anchoring heads, ``GuidedAnchorHead`` and ``GARetinaHead``) convolves a
single image ``(1, C, H, W)`` at the pixels where its mask is set only:

1. ``masked_im2col_forward`` unfolds, for each masked pixel ``m`` at
   ``(h_m, w_m)``, the ``kH x kW`` window whose top-left corner is
   ``(h_m - pad_h, w_m - pad_w)``::

       col[(c * kH + i) * kW + j, m] = im[0, c, h_m - pad_h + i,
                                          w_m - pad_w + j]

   and 0 where that pixel lies outside the ``H x W`` map. The window is
   placed by the padding, not centred by ``k // 2``: it is exactly the
   window that ``nn.Conv2d(padding=(pad_h, pad_w))`` reads for its output
   pixel ``(h_m, w_m)``, for odd and even kernels alike. Every element of
   ``col`` is written over.
2. mmcv's wrapper multiplies ``weight.view(C_out, -1) @ col`` and adds the
   bias (``torch.addmm``), giving ``(C_out, n)``.
3. ``masked_col2im_forward`` writes column ``m`` of that product over
   ``im[0, :, h_m, w_m]`` of the ``(1, C_out, H_out, W_out)`` output; the
   other pixels keep what the buffer held (the wrapper's zeros).

So the result is a plain convolution at the masked pixels and 0 elsewhere.
This follows mmcv's CUDA kernels ``MaskedIm2colForward`` and
``MaskedCol2imForward`` (``csrc/common/cuda/masked_conv2d_cuda_kernel.cuh``);
mmcv has no CPU version. mmcv's wrapper refuses strides other than 1 (it
raises ValueError before reaching these ops, so they take no stride) and
defines no backward: its autograd Function returns ``None`` gradients, so
masked convolution is an inference-only op (mmdet's heads use a plain
convolution while training). The functions here are nevertheless ordinary
differentiable torch (a gather and an ``index_put_``), correct if called
under autograd outside mmcv's Function.

Where mmcv's kernel would read or write the wrong memory, these raise
ValueError instead: an image with more than one batch entry (the kernel
reads batch 0 only), buffers of the wrong shape, and masked pixels outside
the ``H_out x W_out`` output (the kernel's flat index would land on another
row or channel; this happens with mmcv's wrapper when ``H_out < H``, e.g. a
2x2 kernel without padding and a mask on the last row). Duplicate pixels in
the index lists are left to the last write, as in the kernel (which one
wins is unspecified in both).

No arithmetic happens here, so half precision needs no float32 compute: the
values are copied exactly, cast to the buffer's dtype where it differs
(mmcv's kernels require equal dtypes; under autocast the wrapper's
``addmm`` can return half columns for a float32 output buffer).
"""
import torch
from torch import Tensor


def _check_indices(op: str, mask_h_idx: Tensor, mask_w_idx: Tensor) -> None:
    if (mask_h_idx.dim() != 1 or mask_w_idx.dim() != 1
            or mask_h_idx.numel() != mask_w_idx.numel()):
        raise ValueError(
            f'{op}: mask_h_idx {tuple(mask_h_idx.shape)} and mask_w_idx '
            f'{tuple(mask_w_idx.shape)} must both be (n,), the rows and '
            'columns of the n masked pixels')
    for name, index in (('mask_h_idx', mask_h_idx),
                        ('mask_w_idx', mask_w_idx)):
        if index.dtype.is_floating_point or index.dtype.is_complex \
                or index.dtype == torch.bool:
            raise ValueError(f'{op}: {name} must be an integer tensor (mmcv '
                             f'reads int64), got {index.dtype}')


def masked_im2col_forward(im: Tensor, mask_h_idx: Tensor, mask_w_idx: Tensor,
                          col: Tensor, kernel_h: int, kernel_w: int,
                          pad_h: int, pad_w: int) -> None:
    """Unfold the ``kernel_h x kernel_w`` window of each masked pixel into a
    column of ``col``; every element of ``col`` is written over.

    Args:
        im: ``(1, C, H, W)`` feature map.
        mask_h_idx: ``(n,)`` rows of the masked pixels.
        mask_w_idx: ``(n,)`` columns of the masked pixels.
        col: ``(C * kernel_h * kernel_w, n)``; row ``(c * kernel_h + i) *
            kernel_w + j`` holds tap ``(i, j)`` of channel ``c``, i.e.
            ``im[0, c, h - pad_h + i, w - pad_w + j]`` (0 off the map).
        kernel_h: Kernel height.
        kernel_w: Kernel width.
        pad_h: Rows of zero padding above (and below) the map.
        pad_w: Columns of zero padding left (and right) of the map.
    """
    op = 'masked_im2col_forward'
    if im.dim() != 4 or im.size(0) != 1:
        raise ValueError(
            f'{op}: im {tuple(im.shape)} must be (1, C, H, W): mmcv\'s '
            'masked convolution takes a single image')
    if kernel_h < 1 or kernel_w < 1:
        raise ValueError(f'{op}: kernel size must be positive, got '
                         f'({kernel_h}, {kernel_w})')
    _check_indices(op, mask_h_idx, mask_w_idx)
    channels, height, width = im.shape[1:]
    expected = (channels * kernel_h * kernel_w, mask_h_idx.numel())
    if tuple(col.shape) != expected:
        raise ValueError(
            f'{op}: col {tuple(col.shape)} must be (C * kernel_h * kernel_w, '
            f'n) = {expected}')
    device = im.device
    rows = (mask_h_idx.to(device, torch.long) - pad_h)[None, :] \
        + torch.arange(kernel_h, device=device)[:, None]  # (kH, n)
    cols = (mask_w_idx.to(device, torch.long) - pad_w)[None, :] \
        + torch.arange(kernel_w, device=device)[:, None]  # (kW, n)
    inside = (((rows >= 0) & (rows < height))[:, None, :]
              & ((cols >= 0) & (cols < width))[None, :, :])  # (kH, kW, n)
    # Read a clamped pixel everywhere, then zero the taps off the map.
    taps = im[0][:, rows.clamp(0, height - 1)[:, None, :],
                 cols.clamp(0, width - 1)[None, :, :]]  # (C, kH, kW, n)
    taps.masked_fill_(~inside, 0)
    col.copy_(taps.reshape(expected))


def masked_col2im_forward(col: Tensor, mask_h_idx: Tensor, mask_w_idx: Tensor,
                          im: Tensor, height: int, width: int,
                          channels: int) -> None:
    """Write column ``m`` of ``col`` over ``im[0, :, h_m, w_m]``; the
    pixels that are not masked keep what ``im`` held.

    Args:
        col: ``(channels, n)`` values of the masked pixels.
        mask_h_idx: ``(n,)`` rows of the masked pixels, in ``[0, height)``.
        mask_w_idx: ``(n,)`` columns of the masked pixels, in
            ``[0, width)``.
        im: ``(1, channels, height, width)`` output buffer; written over at
            the masked pixels only.
        height: Height of ``im``.
        width: Width of ``im``.
        channels: Channels of ``im`` and rows of ``col``.
    """
    op = 'masked_col2im_forward'
    _check_indices(op, mask_h_idx, mask_w_idx)
    expected = (1, channels, height, width)
    if tuple(im.shape) != expected:
        raise ValueError(f'{op}: im {tuple(im.shape)} must be (1, channels, '
                         f'height, width) = {expected}')
    count = mask_h_idx.numel()
    if tuple(col.shape) != (channels, count):
        raise ValueError(f'{op}: col {tuple(col.shape)} must be (channels, '
                         f'n) = {(channels, count)}')
    if count == 0:
        return
    rows = mask_h_idx.to(im.device, torch.long)
    cols = mask_w_idx.to(im.device, torch.long)
    # One device sync; mmcv's wrapper has just synced for torch.nonzero.
    outside = ((rows.min() < 0) | (rows.max() >= height)
               | (cols.min() < 0) | (cols.max() >= width))
    if outside.item():
        raise ValueError(
            f'{op}: masked pixels must lie in the {height}x{width} output; '
            f'rows span [{int(rows.min())}, {int(rows.max())}] and columns '
            f'[{int(cols.min())}, {int(cols.max())}]. With mmcv\'s wrapper '
            'this means the convolution shrinks the map (kernel - 1 > 2 * '
            'padding) and the mask covers pixels it drops')
    im[0, :, rows, cols] = col.to(im.dtype)
