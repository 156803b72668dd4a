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

Gradient buffers are filled as mmcv's kernels fill them (its wrappers pass
them zeroed): the input, weight and bias gradients are added
(``atomicAdd``/``addmm_`` into the buffer), the offset and mask gradients
written over. ``im2col_step`` only sets how many images mmcv's kernel
unfolds at once and changes no result; torchvision chooses its own.

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


def _check(op: str, input: Tensor, offset: Tensor, mask: Optional[Tensor],
           weight: Tensor, bias: Optional[Tensor], geo: _Geometry) -> None:
    """Raise ValueError where mmcv's kernel would refuse (or silently
    misread) the shapes; torchvision infers groups from them instead."""
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
    if offset.dim() != 4 or offset.size(1) != 2 * taps:
        raise ValueError(
            f'{op}: offset {tuple(offset.shape)} must be (N, 2 * '
            f'deform_groups * kH * kW = {2 * taps}, H_out, W_out): one (dy, '
            f'dx) pair per kernel tap and deformable group')
    if mask is not None and (mask.dim() != 4 or mask.size(1) != taps):
        raise ValueError(
            f'{op}: mask {tuple(mask.shape)} must be (N, deform_groups * kH '
            f'* kW = {taps}, H_out, W_out)')
    if bias is not None and bias.shape != (weight.size(0), ):
        raise ValueError(
            f'{op}: bias {tuple(bias.shape)} must be (C_out,) = '
            f'({weight.size(0)},), or with_bias=False')


def _conv(input: Tensor, offset: Tensor, weight: Tensor,
          mask: Optional[Tensor], bias: Optional[Tensor],
          geo: _Geometry) -> Tensor:
    """torchvision's deformable convolution in float32 or wider."""
    from torchvision.ops import deform_conv2d
    dtype = compute_dtype(input.dtype)
    cast = [None if t is None else t.to(dtype)
            for t in (input, offset, weight, mask, bias)]
    input, offset, weight, mask, bias = cast
    return deform_conv2d(input, offset, weight, bias, stride=geo.stride,
                         padding=geo.padding, dilation=geo.dilation,
                         mask=mask)


def _grads(grad_output: Tensor, tensors: Dict[str, Optional[Tensor]],
           wanted: Sequence[str], geo: _Geometry) -> Dict[str, Tensor]:
    """Gradients of ``<output, grad_output>`` w.r.t. the ``wanted`` ones of
    ``tensors`` (keyword arguments of :func:`_conv`)."""
    dtype = compute_dtype(tensors['input'].dtype)
    with torch.enable_grad():
        leaves = {
            name: None if t is None else
            t.detach().to(dtype).requires_grad_(name in wanted)
            for name, t in tensors.items()
        }
        output = _conv(geo=geo, **leaves)
        grads = torch.autograd.grad(output, [leaves[n] for n in wanted],
                                    grad_output.to(dtype))
    return dict(zip(wanted, grads))


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
           geo)
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
           bias, geo)
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
    grad_offset.copy_(grads['offset'])
    grad_mask.copy_(grads['mask'])
