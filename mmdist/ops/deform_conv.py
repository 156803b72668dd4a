"""Deformable convolution with the signatures of mmcv's ``_ext`` kernels.

- ``deform_conv_forward`` / ``deform_conv_backward_input`` /
  ``deform_conv_backward_parameters``: DCNv1 (``DeformConv2dFunction``);
- ``modulated_deform_conv_forward`` / ``modulated_deform_conv_backward``:
  DCNv2 (``ModulatedDeformConv2dFunction``).

The forward is :func:`torchvision.ops.deform_conv2d`, the backward autograd
through it. Both sample alike: the offsets of each deformable group are
``(dy, dx)`` pairs per kernel tap, ``offset[:, 2 * (i * kW + j)]`` the row
and ``offset[:, 2 * (i * kW + j) + 1]`` the column shift of tap ``(i, j)``,
the mask one channel per tap, and a sample at ``(h, w)`` reads zero once
``h <= -1``, ``h >= H``, ``w <= -1`` or ``w >= W`` (bilinear weights on the
pixels inside in between).

Two things differ from torchvision and follow mmcv's kernels:

- **The offset gradient at the border.** mmcv's coordinate weight
  (``get_coordinate_weight``, ``dmcn_get_coordinate_weight``) is zero for a
  sample on or past the border (``h <= -1``, ``h >= H``, ``w <= -1``,
  ``w >= W``); torchvision's is not at ``h == -1`` or ``w == -1``. Every DCN
  layer starts with zero offsets, and with padding its border taps sit
  exactly there, so the offset gradient of those taps is zeroed here.
- **DCNv2's offset and mask buffers.** mmcv's DCNv2 kernel never checks
  their size: it reads each image's buffer with the output's geometry,
  the first ``C * H_out * W_out`` values in ``(C, H, W)`` order. DyHead
  relies on it: it predicts offsets and masks on one pyramid level and
  passes them to the DCN of the next coarser level, whose output is half
  as large, and its zoo weights were trained on what mmcv read. A buffer
  with fewer values than that is refused. DCNv1's kernel checks the shape,
  and so does its version here.

Gradient buffers are filled as mmcv's kernels fill them (its wrappers pass
them zeroed): the input, weight and bias gradients are added
(``atomicAdd``/``addmm_`` into the buffer), the offset and mask gradients
written over (for a DCNv2 buffer larger than what was read, the values
past it are left as they are). ``im2col_step`` only sets how many images
mmcv's kernel unfolds at once and changes no result; torchvision chooses
its own.

Half-precision inputs (``--amp``) are computed in float32 and written back
in the buffers' dtype.
"""
from typing import Dict, NamedTuple, Optional, Sequence, Tuple

import torch
from torch import Tensor

from . import compute_dtype


class _Geometry(NamedTuple):
    """The convolution's hyper-parameters, each ``(height, width)``."""

    kernel: Tuple[int, int]
    stride: Tuple[int, int]
    padding: Tuple[int, int]
    dilation: Tuple[int, int]
    groups: int
    deform_groups: int


def _output_size(input: Tensor, geo: _Geometry) -> Tuple[int, int]:
    """``(H_out, W_out)`` of the convolution, as mmcv's kernels compute it."""
    return tuple(
        (input.size(2 + d) + 2 * geo.padding[d] - geo.dilation[d] *
         (geo.kernel[d] - 1) - 1) // geo.stride[d] + 1 for d in (0, 1))


def _check(op: str, input: Tensor, offset: Tensor, mask: Optional[Tensor],
           weight: Tensor, bias: Optional[Tensor], geo: _Geometry,
           modulated: bool = False) -> None:
    """Raise ValueError where mmcv's kernel would refuse (or silently
    misread) the shapes; torchvision infers groups from them instead.

    DCNv1's offset must be ``(N, 2 * taps, H_out, W_out)``; DCNv2's offset
    and mask buffers need only hold that many values per image
    (:func:`_read_as_output`)."""
    kernel_h, kernel_w = geo.kernel
    if input.dim() != 4 or weight.dim() != 4:
        raise ValueError(
            f'{op}: input must be (N, C, H, W) and weight (C_out, C / groups, '
            f'kH, kW); got {tuple(input.shape)} and {tuple(weight.shape)}')
    if tuple(weight.shape[2:]) != geo.kernel:
        raise ValueError(
            f'{op}: kernel size {kernel_h}x{kernel_w} does not match the '
            f'weight {tuple(weight.shape)}; pass the weight\'s last two sizes')
    channels, groups, dgroups = input.size(1), geo.groups, geo.deform_groups
    if (groups < 1 or channels != weight.size(1) * groups
            or weight.size(0) % groups):
        raise ValueError(
            f'{op}: groups={groups} does not fit input channels {channels} '
            f'and weight {tuple(weight.shape)}: need input channels == '
            'weight.size(1) * groups and weight.size(0) divisible by groups')
    if dgroups < 1 or channels % dgroups:
        raise ValueError(
            f'{op}: deform_groups={dgroups} must divide the {channels} '
            'input channels')
    taps = dgroups * kernel_h * kernel_w
    out_h, out_w = _output_size(input, geo)
    if modulated:
        for name, buffer, rows in (('offset', offset, 2 * taps),
                                   ('mask', mask, taps)):
            if (buffer.dim() != 4 or buffer.size(0) != input.size(0)
                    or buffer[0].numel() < rows * out_h * out_w):
                raise ValueError(
                    f'{op}: {name} {tuple(buffer.shape)} must be (N = '
                    f'{input.size(0)}, {rows}, H_out = {out_h}, W_out = '
                    f'{out_w}), or a 4-D buffer of N images holding at '
                    f'least {rows} x {out_h} x {out_w} values each (mmcv '
                    f"reads each image's buffer with the output's geometry)")
    elif (offset.dim() != 4 or offset.size(1) != 2 * taps
          or tuple(offset.shape[2:]) != (out_h, out_w)
          or offset.size(0) != input.size(0)):
        raise ValueError(
            f'{op}: offset {tuple(offset.shape)} must be (N = '
            f'{input.size(0)}, 2 * deform_groups * kH * kW = {2 * taps}, '
            f'H_out = {out_h}, W_out = {out_w}): one (dy, dx) pair per '
            'kernel tap and deformable group at each output position')
    if bias is not None and bias.shape != (weight.size(0), ):
        raise ValueError(
            f'{op}: bias {tuple(bias.shape)} must be (C_out,) = '
            f'({weight.size(0)},), or with_bias=False')


def _read_as_output(buffer: Tensor, rows: int,
                    out_size: Tuple[int, int]) -> Tensor:
    """What mmcv's DCNv2 kernel reads of an offset or mask buffer: each
    image's first ``rows * H_out * W_out`` values, in ``(C, H, W)`` order,
    as ``(rows, H_out, W_out)`` (the buffer itself when it has that
    shape)."""
    shape = (buffer.size(0), rows, *out_size)
    if tuple(buffer.shape) == shape:
        return buffer
    return buffer.flatten(1)[:, :rows * out_size[0] * out_size[1]].view(shape)


def _conv(input: Tensor, offset: Tensor, weight: Tensor,
          mask: Optional[Tensor], bias: Optional[Tensor],
          geo: _Geometry) -> Tensor:
    """torchvision's deformable convolution in float32 or wider, reading
    the offset and mask as mmcv's kernels do."""
    from torchvision.ops import deform_conv2d
    dtype = compute_dtype(input.dtype)
    cast = [None if t is None else t.to(dtype)
            for t in (input, offset, weight, mask, bias)]
    input, offset, weight, mask, bias = cast
    out_size = _output_size(input, geo)
    taps = geo.deform_groups * geo.kernel[0] * geo.kernel[1]
    offset = _read_as_output(offset, 2 * taps, out_size)
    if mask is not None:
        mask = _read_as_output(mask, taps, out_size)
    return deform_conv2d(input, offset, weight, bias, stride=geo.stride,
                         padding=geo.padding, dilation=geo.dilation,
                         mask=mask)


def _off_the_map(input: Tensor, offset: Tensor, geo: _Geometry) -> Tensor:
    """Where a tap samples on or past the border of the input: ``(N,
    taps, H_out, W_out)`` booleans, ``h <= -1 or h >= H or w <= -1 or
    w >= W`` with ``h = y * stride - pad + i * dilation + dy`` computed in
    the offset's dtype, as mmcv's kernels compute it."""
    (kernel_h, kernel_w), taps = geo.kernel, geo.deform_groups * \
        geo.kernel[0] * geo.kernel[1]
    out_h, out_w = _output_size(input, geo)
    offset = _read_as_output(offset, 2 * taps, (out_h, out_w)).unflatten(
        1, (geo.deform_groups, kernel_h, kernel_w, 2))
    positions = []
    for d, (out, kernel) in enumerate(((out_h, kernel_h), (out_w, kernel_w))):
        start = torch.arange(out, device=offset.device) * geo.stride[d] \
            - geo.padding[d]
        tap = torch.arange(kernel, device=offset.device) * geo.dilation[d]
        grid = (start[None, :] + tap[:, None]).to(offset.dtype)
        # (kernel, out) -> broadcast over (N, g, kh, kw, H_out, W_out)
        grid = grid[:, None, :, None] if d == 0 else grid[None, :, None, :]
        positions.append(grid + offset[:, :, :, :, d])
    h, w = positions
    outside = (h <= -1) | (h >= input.size(2)) | (w <= -1) | \
        (w >= input.size(3))
    return outside.flatten(1, 3)


def _grads(grad_output: Tensor, tensors: Dict[str, Optional[Tensor]],
           wanted: Sequence[str], geo: _Geometry) -> Dict[str, Tensor]:
    """Gradients of ``<output, grad_output>`` w.r.t. the ``wanted`` ones of
    ``tensors`` (keyword arguments of :func:`_conv`). The offset gradient
    is mmcv's: zero for taps that sample on or past the border, and
    ``(N, 2 * taps, H_out, W_out)`` as read (see :func:`_write_read`)."""
    dtype = compute_dtype(tensors['input'].dtype)
    taps = geo.deform_groups * geo.kernel[0] * geo.kernel[1]
    out_size = _output_size(tensors['input'], geo)
    with torch.enable_grad():
        leaves = {
            name: None if t is None else
            t.detach().to(dtype).requires_grad_(name in wanted)
            for name, t in tensors.items()
        }
        # Differentiate w.r.t. what the kernel reads, not the whole buffer.
        for name, rows in (('offset', 2 * taps), ('mask', taps)):
            if leaves[name] is not None:
                leaves[name] = _read_as_output(
                    leaves[name].detach(), rows,
                    out_size).requires_grad_(name in wanted)
        output = _conv(geo=geo, **leaves)
        grads = dict(zip(wanted, torch.autograd.grad(
            output, [leaves[n] for n in wanted], grad_output.to(dtype))))
    if 'offset' in grads:
        outside = _off_the_map(leaves['input'], leaves['offset'], geo)
        grads['offset'] = grads['offset'].unflatten(1, (taps, 2)).masked_fill(
            outside[:, :, None], 0).flatten(1, 2)
    return grads


def _write_read(buffer: Tensor, values: Tensor) -> None:
    """Write the gradient of what :func:`_read_as_output` read over the
    values it read from ``buffer``, leaving the rest, as mmcv's kernels
    write only those."""
    if values.shape == buffer.shape:
        buffer.copy_(values)
        return
    count = values[0].numel()
    if buffer.is_contiguous():
        buffer.view(buffer.size(0), -1)[:, :count].copy_(values.flatten(1))
    else:
        flat = buffer.flatten(1).clone()
        flat[:, :count] = values.flatten(1)
        buffer.copy_(flat.view(buffer.shape))


def _v1_geometry(kW: int, kH: int, dW: int, dH: int, padW: int, padH: int,
                 dilationW: int, dilationH: int, group: int,
                 deformable_group: int) -> _Geometry:
    return _Geometry((kH, kW), (dH, dW), (padH, padW),
                     (dilationH, dilationW), group, deformable_group)


def deform_conv_forward(input: Tensor, weight: Tensor, offset: Tensor,
                        output: Tensor, columns: Tensor, ones: Tensor,
                        kW: int, kH: int, dW: int, dH: int, padW: int,
                        padH: int, dilationW: int, dilationH: int, group: int,
                        deformable_group: int, im2col_step: int) -> None:
    """DCNv1 of ``input`` ``(N, C, H, W)``, written over ``output``
    ``(N, C_out, H_out, W_out)``.

    Args:
        input: The feature map.
        weight: ``(C_out, C / group, kH, kW)``.
        offset: ``(N, 2 * deformable_group * kH * kW, H_out, W_out)``.
        output: Filled with the result (mmcv's kernel copies over it).
        columns: mmcv's im2col scratch buffer; unused.
        ones: mmcv's scratch buffer; unused.
        kW: Kernel width.
        kH: Kernel height.
        dW: Stride along the width.
        dH: Stride along the height.
        padW: Zero padding left and right.
        padH: Zero padding top and bottom.
        dilationW: Dilation along the width.
        dilationH: Dilation along the height.
        group: Convolution groups.
        deformable_group: Groups of channels that share one offset field.
        im2col_step: Images mmcv unfolds at once; changes no result.
    """
    geo = _v1_geometry(kW, kH, dW, dH, padW, padH, dilationW, dilationH,
                       group, deformable_group)
    _check('deform_conv_forward', input, offset, None, weight, None, geo)
    output.copy_(_conv(input, offset, weight, None, None, geo))


def deform_conv_backward_input(input: Tensor, offset: Tensor,
                               gradOutput: Tensor, gradInput: Tensor,
                               gradOffset: Tensor, weight: Tensor,
                               columns: Tensor, kW: int, kH: int, dW: int,
                               dH: int, padW: int, padH: int, dilationW: int,
                               dilationH: int, group: int,
                               deformable_group: int,
                               im2col_step: int) -> None:
    """Gradients of :func:`deform_conv_forward` w.r.t. input and offset.

    As mmcv's kernels do, the input gradient is added to ``gradInput`` and
    the offset gradient written over ``gradOffset``. The other arguments
    are those of :func:`deform_conv_forward`.

    Args:
        input: The forward's input ``(N, C, H, W)``.
        offset: The forward's offset.
        gradOutput: Gradient w.r.t. the forward's output.
        gradInput: ``(N, C, H, W)``; the gradient is added to it.
        gradOffset: Same shape as ``offset``; overwritten.
        weight: The forward's weight.
        columns: mmcv's scratch buffer; unused.
    """
    geo = _v1_geometry(kW, kH, dW, dH, padW, padH, dilationW, dilationH,
                       group, deformable_group)
    _check('deform_conv_backward_input', input, offset, None, weight, None,
           geo)
    grads = _grads(
        gradOutput,
        dict(input=input, offset=offset, weight=weight, mask=None, bias=None),
        ('input', 'offset'), geo)
    gradInput.add_(grads['input'])
    gradOffset.copy_(grads['offset'])


def deform_conv_backward_parameters(input: Tensor, offset: Tensor,
                                    gradOutput: Tensor, gradWeight: Tensor,
                                    columns: Tensor, ones: Tensor, kW: int,
                                    kH: int, dW: int, dH: int, padW: int,
                                    padH: int, dilationW: int, dilationH: int,
                                    group: int, deformable_group: int,
                                    scale: float, im2col_step: int) -> None:
    """Add ``scale`` times the weight gradient of
    :func:`deform_conv_forward` to ``gradWeight``, as mmcv's kernel does
    (``addmm_(..., beta=1, alpha=scale)``; its wrapper passes ``scale=1``
    into a zeroed buffer).

    Args:
        input: The forward's input ``(N, C, H, W)``.
        offset: The forward's offset.
        gradOutput: Gradient w.r.t. the forward's output.
        gradWeight: ``(C_out, C / group, kH, kW)``; added to.
        columns: mmcv's scratch buffer; unused.
        ones: mmcv's scratch buffer; unused.
        scale: Factor on the gradient before it is added.

    The other arguments are those of :func:`deform_conv_forward`.
    """
    geo = _v1_geometry(kW, kH, dW, dH, padW, padH, dilationW, dilationH,
                       group, deformable_group)
    # The weight buffer has the weight's shape (mmcv checks it as one).
    _check('deform_conv_backward_parameters', input, offset, None,
           gradWeight, None, geo)
    # mmcv passes no weight here; the output is linear in the weight, so
    # its gradient w.r.t. the weight does not depend on it: zeros serve.
    weight = torch.zeros_like(gradWeight)
    grads = _grads(
        gradOutput,
        dict(input=input, offset=offset, weight=weight, mask=None, bias=None),
        ('weight', ), geo)
    gradWeight.add_(grads['weight'], alpha=scale)


def _v2_geometry(kernel_h: int, kernel_w: int, stride_h: int, stride_w: int,
                 pad_h: int, pad_w: int, dilation_h: int, dilation_w: int,
                 group: int, deformable_group: int) -> _Geometry:
    return _Geometry((kernel_h, kernel_w), (stride_h, stride_w),
                     (pad_h, pad_w), (dilation_h, dilation_w), group,
                     deformable_group)


def modulated_deform_conv_forward(
        input: Tensor, weight: Tensor, bias: Tensor, ones: Tensor,
        offset: Tensor, mask: Tensor, output: Tensor, columns: Tensor,
        kernel_h: int, kernel_w: int, stride_h: int, stride_w: int,
        pad_h: int, pad_w: int, dilation_h: int, dilation_w: int, group: int,
        deformable_group: int, with_bias: bool) -> None:
    """DCNv2 of ``input`` ``(N, C, H, W)``, written over ``output``
    ``(N, C_out, H_out, W_out)`` (mmcv's kernel zeroes it first).

    Args:
        input: The feature map.
        weight: ``(C_out, C / group, kernel_h, kernel_w)``.
        bias: ``(C_out,)``; read only if ``with_bias``.
        ones: mmcv's scratch buffer; unused.
        offset: ``(N, 2 * deformable_group * kernel_h * kernel_w, H_out,
            W_out)``.
        mask: ``(N, deformable_group * kernel_h * kernel_w, H_out, W_out)``.
        output: Filled with the result.
        columns: mmcv's im2col scratch buffer; unused.
        kernel_h: Kernel height.
        kernel_w: Kernel width.
        stride_h: Stride along the height.
        stride_w: Stride along the width.
        pad_h: Zero padding top and bottom.
        pad_w: Zero padding left and right.
        dilation_h: Dilation along the height.
        dilation_w: Dilation along the width.
        group: Convolution groups.
        deformable_group: Groups of channels that share one offset field.
        with_bias: Whether ``bias`` is added.
    """
    geo = _v2_geometry(kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w,
                       dilation_h, dilation_w, group, deformable_group)
    bias = bias if with_bias else None
    _check('modulated_deform_conv_forward', input, offset, mask, weight, bias,
           geo, modulated=True)
    output.copy_(_conv(input, offset, weight, mask, bias, geo))


def modulated_deform_conv_backward(
        input: Tensor, weight: Tensor, bias: Tensor, ones: Tensor,
        offset: Tensor, mask: Tensor, columns: Tensor, grad_input: Tensor,
        grad_weight: Tensor, grad_bias: Tensor, grad_offset: Tensor,
        grad_mask: Tensor, grad_output: Tensor, kernel_h: int, kernel_w: int,
        stride_h: int, stride_w: int, pad_h: int, pad_w: int,
        dilation_h: int, dilation_w: int, group: int, deformable_group: int,
        with_bias: bool) -> None:
    """Gradients of :func:`modulated_deform_conv_forward`.

    As mmcv's kernels do, the input, weight and bias gradients are added to
    their buffers and the offset and mask gradients written over theirs;
    ``grad_bias`` is left alone without ``with_bias``. The arguments not
    listed are those of :func:`modulated_deform_conv_forward`.

    Args:
        input: The forward's input.
        weight: The forward's weight.
        bias: The forward's bias.
        ones: mmcv's scratch buffer; unused.
        offset: The forward's offset.
        mask: The forward's mask.
        columns: mmcv's scratch buffer; unused.
        grad_input: Added to.
        grad_weight: Added to.
        grad_bias: Added to if ``with_bias``.
        grad_offset: Overwritten.
        grad_mask: Overwritten.
        grad_output: Gradient w.r.t. the forward's output.
        with_bias: Whether the forward added ``bias``.
    """
    geo = _v2_geometry(kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w,
                       dilation_h, dilation_w, group, deformable_group)
    bias = bias if with_bias else None
    _check('modulated_deform_conv_backward', input, offset, mask, weight,
           bias, geo, modulated=True)
    wanted = ('input', 'offset', 'mask', 'weight') + (('bias', )
                                                      if with_bias else ())
    grads = _grads(
        grad_output,
        dict(input=input, offset=offset, weight=weight, mask=mask, bias=bias),
        wanted, geo)
    grad_input.add_(grads['input'])
    grad_weight.add_(grads['weight'])
    if with_bias:
        grad_bias.add_(grads['bias'])
    _write_read(grad_offset, grads['offset'])
    _write_read(grad_mask, grads['mask'])
