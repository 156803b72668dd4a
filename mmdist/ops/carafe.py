"""CARAFE (content-aware reassembly of features) with the signatures of
mmcv's ``_ext`` kernels: ``carafe_forward`` / ``carafe_backward`` (mmcv's
``CARAFE`` and ``CARAFEPack``) and ``carafe_naive_forward`` /
``carafe_naive_backward`` (``CARAFENaive``). mmcv has CUDA kernels only
(``carafe_cuda_kernel.cuh``, ``carafe_naive_cuda_kernel.cuh``); both pairs
compute the same function, so one torch version serves both here.

For features ``(N, C, H, W)``, ``scale_factor`` ``s``, an odd
``kernel_size`` ``k = 2r + 1`` and ``group_size`` ``G`` (the channels split
into ``G`` consecutive groups of ``C / G``), masks are
``(N, G * k * k, s * H, s * W)`` and the output ``(N, C, s * H, s * W)``::

    out[n, c, p, q] = sum over ky, kx in [0, k) of
        mask[n, (g * k + ky) * k + kx, p, q]
        * feat[n, c, p // s + ky - r, q // s + kx - r]

with ``g = c // (C / G)`` and ``feat`` zero outside the map (mmcv's kernels
skip those taps). Output pixel ``(p, q)`` reassembles the ``k x k``
neighbourhood of input pixel ``(p // s, q // s)`` with its own weights.

It is computed as batched matrix products, one per kernel row: for each
input pixel and group, its ``s * s`` output pixels' weights for the row's
``k`` taps times the ``k`` features under those taps. Gathering a row at a
time keeps the gathered features to ``k`` times their size (an unfold of
all taps would take ``k * k`` times). Being matrix products, on CUDA they
round as TF32 where ``torch.backends.cuda.matmul.allow_tf32`` is set (off
by default; mmcv's kernel sums in full float32).

Buffers are filled as mmcv's kernels fill them (its wrappers pass them
zeroed): both forwards write over ``output``; ``carafe_backward`` writes
over ``bottom_grad`` and ``mask_grad``, ``carafe_naive_backward`` adds to
them (``atomicAdd``). ``carafe_forward`` also fills ``rfeatures`` as mmcv
does, with the features in NHWC order (resized to ``(N, H, W, C)``): mmcv's
wrapper saves it and hands it to ``carafe_backward`` in place of the
features. mmcv's other NHWC scratch buffers (``routput``, ``rmasks``,
``rtop_grad``, ...) are read by no wrapper and left untouched.

mmcv's fast kernel keeps a pixel's masks in shared memory, room for 384
mask channels (``G * k * k``); here, as in its naive kernel, any number
works. Half-precision inputs (``--amp``) are computed in float32 and
written back in the buffers' dtype.
"""
from typing import Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

from . import compute_dtype


def _check(op: str, features: Tuple[int, ...], masks: Tuple[int, ...],
           kernel_size: int, group_size: int, scale_factor: int) -> None:
    """Raise ValueError where mmcv's wrapper asserts or its kernel would
    misread the shapes (``features``, ``masks``: the tensors' shapes)."""
    if kernel_size < 1 or kernel_size % 2 == 0:
        raise ValueError(f'{op}: kernel_size must be odd and >= 1, got '
                         f'{kernel_size}')
    if scale_factor < 1:
        raise ValueError(f'{op}: scale_factor must be >= 1, got '
                         f'{scale_factor}')
    if len(features) != 4:
        raise ValueError(f'{op}: features {features} must be (N, C, H, W)')
    n, c, h, w = features
    if group_size < 1 or c % group_size:
        raise ValueError(f'{op}: group_size={group_size} must divide the '
                         f'{c} feature channels')
    expected = (n, group_size * kernel_size**2, h * scale_factor,
                w * scale_factor)
    if tuple(masks) != expected:
        raise ValueError(
            f'{op}: masks {tuple(masks)} must be (N, group_size * '
            f'kernel_size**2, H * scale_factor, W * scale_factor) = '
            f'{expected} for features {features}')


def _check_buffer(op: str, name: str, buffer: Tensor,
                  expected: Tuple[int, ...]) -> None:
    if tuple(buffer.shape) != tuple(expected):
        raise ValueError(f'{op}: {name} {tuple(buffer.shape)} must be '
                         f'{tuple(expected)}')


def _cells(x: Tensor, groups: int, scale_factor: int) -> Tensor:
    """``(N, G * D, s * H, s * W)`` as ``(N * G * H * W, s * s, D)``: for
    each group and input pixel, the ``s x s`` output pixels it covers
    (output row ``p`` lies over input row ``p // s``)."""
    n, channels, height, width = x.shape
    h, w, s = height // scale_factor, width // scale_factor, scale_factor
    depth = channels // groups
    return x.reshape(n, groups, depth, h, s, w, s).permute(
        0, 1, 3, 5, 4, 6, 2).reshape(n * groups * h * w, s * s, depth)


def _uncells(x: Tensor, n: int, groups: int, h: int, w: int,
             scale_factor: int) -> Tensor:
    """The inverse of :func:`_cells`, for input maps of ``h x w``."""
    s, depth = scale_factor, x.shape[-1]
    return x.reshape(n, groups, h, w, s, s, depth).permute(
        0, 1, 6, 2, 4, 3, 5).reshape(n, groups * depth, h * s, w * s)


def _padded(features: Tensor, kernel_size: int, groups: int) -> Tensor:
    """Zero-padded features, channels last, ``(N, G, H + 2r, W + 2r,
    C / G)``, in the compute dtype."""
    n, c, h, w = features.shape
    r = (kernel_size - 1) // 2
    padded = F.pad(features.to(compute_dtype(features.dtype)), (r, r, r, r))
    return padded.reshape(n, groups, c // groups, h + 2 * r,
                          w + 2 * r).permute(0, 1, 3, 4, 2)


def _row(padded: Tensor, ky: int, kernel_size: int, h: int) -> Tensor:
    """The features under kernel row ``ky``, ``(N * G * H * W, C / G,
    k)``: column ``kx`` is the pixel at offset ``(ky - r, kx - r)``."""
    rows = padded[:, :, ky:ky + h].unfold(3, kernel_size, 1)
    n, groups, h, w, depth = rows.shape[:5]
    return rows.reshape(n * groups * h * w, depth, kernel_size)


def _reassemble(features: Tensor, masks: Tensor, kernel_size: int,
                group_size: int, scale_factor: int) -> Tensor:
    """CARAFE's output ``(N, C, s * H, s * W)`` in the compute dtype."""
    n, c, h, w = features.shape
    k = kernel_size
    padded = _padded(features, k, group_size)
    weights = _cells(masks.to(padded.dtype), group_size, scale_factor)
    out = padded.new_zeros(weights.shape[0], scale_factor**2, c // group_size)
    for ky in range(k):
        # (cell, s*s, k) @ (cell, k, C/G): one kernel row at a time keeps
        # the gathered features to k (not k * k) times their size.
        out.baddbmm_(weights[:, :, ky * k:(ky + 1) * k],
                     _row(padded, ky, k, h).transpose(1, 2))
    return _uncells(out, n, group_size, h, w, scale_factor)


def _gradients(top_grad: Tensor, features: Tensor, masks: Tensor,
               kernel_size: int, group_size: int,
               scale_factor: int) -> Tuple[Tensor, Tensor]:
    """Gradients of ``<_reassemble(...), top_grad>`` w.r.t. the features
    ``(N, C, H, W)`` and the masks, in the compute dtype."""
    n, c, h, w = features.shape
    k, r = kernel_size, (kernel_size - 1) // 2
    padded = _padded(features, k, group_size)
    weights = _cells(masks.to(padded.dtype), group_size, scale_factor)
    top = _cells(top_grad.to(padded.dtype), group_size, scale_factor)
    grad_padded = torch.zeros_like(padded)
    grad_weights = torch.empty_like(weights)
    for ky in range(k):
        taps = slice(ky * k, (ky + 1) * k)
        grad_weights[:, :, taps] = torch.bmm(top, _row(padded, ky, k, h))
        # (cell, k, C/G): what each tap of the row read, scattered back.
        grad_row = torch.bmm(weights[:, :, taps].transpose(1, 2), top)
        grad_row = grad_row.reshape(n, group_size, h, w, k, c // group_size)
        for kx in range(k):
            grad_padded[:, :, ky:ky + h, kx:kx + w] += grad_row[..., kx, :]
    grad_features = grad_padded[:, :, r:r + h, r:r + w].permute(
        0, 1, 4, 2, 3).reshape(n, c, h, w)
    return grad_features, _uncells(grad_weights, n, group_size, h, w,
                                   scale_factor)


def carafe_naive_forward(features: Tensor, masks: Tensor, output: Tensor,
                         kernel_size: int, group_size: int,
                         scale_factor: int) -> None:
    """CARAFE of ``features`` with ``masks``, written over ``output``.

    Args:
        features: ``(N, C, H, W)``.
        masks: ``(N, group_size * kernel_size**2, s * H, s * W)``; channel
            ``(g * k + ky) * k + kx`` weighs tap ``(ky, kx)`` of group
            ``g``.
        output: ``(N, C, s * H, s * W)``; overwritten.
        kernel_size: Odd side ``k`` of the reassembled neighbourhood.
        group_size: Channel groups, each with its own masks.
        scale_factor: Upsampling ratio ``s``.
    """
    op = 'carafe_naive_forward'
    _check(op, tuple(features.shape), tuple(masks.shape), kernel_size,
           group_size, scale_factor)
    _check_buffer(op, 'output', output,
                  masks.shape[:1] + features.shape[1:2] + masks.shape[2:])
    output.copy_(_reassemble(features, masks, kernel_size, group_size,
                             scale_factor))


def carafe_naive_backward(top_grad: Tensor, features: Tensor, masks: Tensor,
                          bottom_grad: Tensor, mask_grad: Tensor,
                          kernel_size: int, group_size: int,
                          scale_factor: int) -> None:
    """Add the gradients of :func:`carafe_naive_forward` w.r.t. features
    and masks to ``bottom_grad`` and ``mask_grad``, as mmcv's kernel adds
    (``atomicAdd``) into the zeroed buffers of its wrapper.

    Args:
        top_grad: Gradient w.r.t. the output, ``(N, C, s * H, s * W)``.
        features: The forward's features ``(N, C, H, W)``.
        masks: The forward's masks.
        bottom_grad: Shaped like ``features``; the gradient is added.
        mask_grad: Shaped like ``masks``; the gradient is added.
        kernel_size: As in the forward.
        group_size: As in the forward.
        scale_factor: As in the forward.
    """
    op = 'carafe_naive_backward'
    _check(op, tuple(features.shape), tuple(masks.shape), kernel_size,
           group_size, scale_factor)
    _check_buffer(op, 'top_grad', top_grad,
                  masks.shape[:1] + features.shape[1:2] + masks.shape[2:])
    _check_buffer(op, 'bottom_grad', bottom_grad, features.shape)
    _check_buffer(op, 'mask_grad', mask_grad, masks.shape)
    grad_features, grad_masks = _gradients(top_grad, features, masks,
                                           kernel_size, group_size,
                                           scale_factor)
    bottom_grad.add_(grad_features.to(bottom_grad.dtype))
    mask_grad.add_(grad_masks.to(mask_grad.dtype))


def carafe_forward(features: Tensor, masks: Tensor, rfeatures: Tensor,
                   routput: Tensor, rmasks: Tensor, output: Tensor,
                   kernel_size: int, group_size: int,
                   scale_factor: int) -> None:
    """CARAFE of ``features`` with ``masks``, written over ``output``;
    ``rfeatures`` is resized to ``(N, H, W, C)`` and filled with the
    features in that (NHWC) order, as mmcv's kernel leaves it for
    :func:`carafe_backward`.

    Args:
        features: ``(N, C, H, W)``.
        masks: ``(N, group_size * kernel_size**2, s * H, s * W)``; channel
            ``(g * k + ky) * k + kx`` weighs tap ``(ky, kx)`` of group
            ``g``.
        rfeatures: Resized and overwritten with the NHWC features.
        routput: mmcv's NHWC scratch buffer for the output; untouched.
        rmasks: mmcv's NHWC scratch buffer for the masks; untouched.
        output: ``(N, C, s * H, s * W)``; overwritten.
        kernel_size: Odd side ``k`` of the reassembled neighbourhood.
        group_size: Channel groups, each with its own masks.
        scale_factor: Upsampling ratio ``s``.
    """
    op = 'carafe_forward'
    _check(op, tuple(features.shape), tuple(masks.shape), kernel_size,
           group_size, scale_factor)
    _check_buffer(op, 'output', output,
                  masks.shape[:1] + features.shape[1:2] + masks.shape[2:])
    if rfeatures.numel() != features.numel():
        raise ValueError(f'{op}: rfeatures {tuple(rfeatures.shape)} must '
                         f'hold as many elements as features '
                         f'{tuple(features.shape)}')
    n, c, h, w = features.shape
    rfeatures.resize_(n, h, w, c).copy_(features.permute(0, 2, 3, 1))
    output.copy_(_reassemble(features, masks, kernel_size, group_size,
                             scale_factor))


def carafe_backward(top_grad: Tensor, rfeatures: Tensor, masks: Tensor,
                    rtop_grad: Tensor, rbottom_grad_hs: Tensor,
                    rbottom_grad: Tensor, rmask_grad: Tensor,
                    bottom_grad: Tensor, mask_grad: Tensor, kernel_size: int,
                    group_size: int, scale_factor: int) -> None:
    """Gradients of :func:`carafe_forward` w.r.t. features and masks,
    written over ``bottom_grad`` and ``mask_grad`` as mmcv's kernel writes
    them.

    Args:
        top_grad: Gradient w.r.t. the output, ``(N, C, s * H, s * W)``.
        rfeatures: The features in NHWC order ``(N, H, W, C)``, as
            :func:`carafe_forward` left them.
        masks: The forward's masks.
        rtop_grad: mmcv's NHWC scratch buffer; untouched.
        rbottom_grad_hs: mmcv's NHWC scratch buffer; untouched.
        rbottom_grad: mmcv's NHWC scratch buffer; untouched.
        rmask_grad: mmcv's NHWC scratch buffer; untouched.
        bottom_grad: ``(N, C, H, W)``; overwritten.
        mask_grad: Shaped like ``masks``; overwritten.
        kernel_size: As in the forward.
        group_size: As in the forward.
        scale_factor: As in the forward.
    """
    op = 'carafe_backward'
    if bottom_grad.dim() != 4:
        raise ValueError(f'{op}: bottom_grad {tuple(bottom_grad.shape)} '
                         'must be (N, C, H, W)')
    n, c, h, w = bottom_grad.shape
    _check_buffer(op, 'rfeatures (the NHWC features carafe_forward fills)',
                  rfeatures, (n, h, w, c))
    features = rfeatures.permute(0, 3, 1, 2)
    _check(op, tuple(features.shape), tuple(masks.shape), kernel_size,
           group_size, scale_factor)
    _check_buffer(op, 'top_grad', top_grad,
                  masks.shape[:1] + features.shape[1:2] + masks.shape[2:])
    _check_buffer(op, 'mask_grad', mask_grad, masks.shape)
    grad_features, grad_masks = _gradients(top_grad, features, masks,
                                           kernel_size, group_size,
                                           scale_factor)
    bottom_grad.copy_(grad_features)
    mask_grad.copy_(grad_masks)
