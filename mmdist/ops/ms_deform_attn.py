"""Multi-scale deformable attention with the signatures of mmcv's
``_ext.ms_deform_attn_forward`` and ``_ext.ms_deform_attn_backward``.

mmcv's ``MultiScaleDeformableAttention`` calls its ``_ext`` kernels only for
CUDA tensors and otherwise ``multi_scale_deformable_attn_pytorch``; this
module serves the kernels with that same PyTorch version (``grid_sample``,
``align_corners=False``, zero padding: a sampling location ``(x, y)`` in
``[0, 1]`` reads pixel ``(x * W - 0.5, y * H - 0.5)`` bilinearly, zero
outside, as mmcv's kernel does) and its backward by autograd.

mmcv's kernel finds level ``l`` at ``value[:, start[l]:start[l] + H_l *
W_l]``; the PyTorch version assumes the levels back to back. Where
``value_level_start_index`` says otherwise the levels are gathered first,
so either layout gives mmcv's result.

Buffers, as mmcv's backward kernels fill them (its wrapper zeroes them):
the value gradient is added (``atomicAdd``), the sampling-location and
attention-weight gradients written over (the kernels for up to 1024
channels per head assign them once per location). ``im2col_step`` only
sets how many images mmcv's kernel processes at once and changes no
result. Half-precision inputs are computed in float32 and the results
given in the value's dtype.
"""
from typing import List, Tuple

import torch
from torch import Tensor

from . import compute_dtype


def _levels(value: Tensor, value_spatial_shapes: Tensor,
            value_level_start_index: Tensor, sampling_locations: Tensor,
            attention_weights: Tensor) -> Tuple[List[Tuple[int, int]],
                                                List[int]]:
    """The ``(H, W)`` and first key of each level, after checking that the
    shapes fit together as mmcv's kernel reads them."""
    if value.dim() != 4:
        raise ValueError(
            'ms_deform_attn expects value (bs, num_keys, num_heads, '
            f'channels), got shape {tuple(value.shape)}')
    batch, num_keys, num_heads, _ = value.shape
    if value_spatial_shapes.dim() != 2 or value_spatial_shapes.size(1) != 2:
        raise ValueError(
            'ms_deform_attn expects value_spatial_shapes (num_levels, 2) of '
            f'(H, W), got shape {tuple(value_spatial_shapes.shape)}')
    num_levels = value_spatial_shapes.size(0)
    if value_level_start_index.shape != (num_levels, ):
        raise ValueError(
            f'ms_deform_attn expects value_level_start_index ({num_levels},)'
            f', one first key per level, got shape '
            f'{tuple(value_level_start_index.shape)}')
    locations = sampling_locations.shape
    if (sampling_locations.dim() != 6 or locations[-1] != 2
            or locations[0] != batch or locations[2] != num_heads
            or locations[3] != num_levels):
        raise ValueError(
            'ms_deform_attn expects sampling_locations (bs, num_queries, '
            f'num_heads, num_levels, num_points, 2) = ({batch}, Q, '
            f'{num_heads}, {num_levels}, P, 2), got {tuple(locations)}')
    if attention_weights.shape != locations[:-1]:
        raise ValueError(
            'ms_deform_attn expects attention_weights (bs, num_queries, '
            'num_heads, num_levels, num_points) = '
            f'{tuple(locations[:-1])}, got {tuple(attention_weights.shape)}')
    shapes = [(int(h), int(w)) for h, w in value_spatial_shapes.tolist()]
    starts = [int(s) for s in value_level_start_index.tolist()]
    for (h, w), start in zip(shapes, starts):
        if h < 1 or w < 1 or start < 0 or start + h * w > num_keys:
            raise ValueError(
                f'ms_deform_attn: a level of {h}x{w} keys from key {start} '
                f'does not fit in the {num_keys} keys of value; check '
                'value_spatial_shapes and value_level_start_index')
    return shapes, starts


def _attend(value: Tensor, shapes: List[Tuple[int, int]], starts: List[int],
            sampling_locations: Tensor, attention_weights: Tensor) -> Tensor:
    """mmcv's PyTorch version on levels laid out as ``starts`` says."""
    from mmcv.ops.multi_scale_deform_attn import \
        multi_scale_deformable_attn_pytorch
    contiguous = [0]
    for h, w in shapes[:-1]:
        contiguous.append(contiguous[-1] + h * w)
    total = contiguous[-1] + shapes[-1][0] * shapes[-1][1]
    if starts != contiguous or total != value.size(1):
        # Gathered by slices, so autograd sends each gradient home.
        value = torch.cat(
            [value[:, s:s + h * w] for (h, w), s in zip(shapes, starts)],
            dim=1)
    return multi_scale_deformable_attn_pytorch(value, shapes,
                                               sampling_locations,
                                               attention_weights)


def ms_deform_attn_forward(value: Tensor, value_spatial_shapes: Tensor,
                           value_level_start_index: Tensor,
                           sampling_locations: Tensor,
                           attention_weights: Tensor,
                           im2col_step: int) -> Tensor:
    """Multi-scale deformable attention; the output, as mmcv's kernel
    returns it.

    Args:
        value: ``(bs, num_keys, num_heads, channels)``.
        value_spatial_shapes: ``(num_levels, 2)`` int64 ``(H, W)``.
        value_level_start_index: ``(num_levels,)`` int64 first key of each
            level in ``value``.
        sampling_locations: ``(bs, num_queries, num_heads, num_levels,
            num_points, 2)`` normalized ``(x, y)``.
        attention_weights: ``(bs, num_queries, num_heads, num_levels,
            num_points)``.
        im2col_step: Images mmcv's kernel processes at once; changes no
            result.

    Returns:
        ``(bs, num_queries, num_heads * channels)`` in ``value``'s dtype.
    """
    shapes, starts = _levels(value, value_spatial_shapes,
                             value_level_start_index, sampling_locations,
                             attention_weights)
    dtype = compute_dtype(value.dtype)
    output = _attend(value.to(dtype), shapes, starts,
                     sampling_locations.to(dtype),
                     attention_weights.to(dtype))
    return output.to(value.dtype)


def ms_deform_attn_backward(value: Tensor, value_spatial_shapes: Tensor,
                            value_level_start_index: Tensor,
                            sampling_locations: Tensor,
                            attention_weights: Tensor, grad_output: Tensor,
                            grad_value: Tensor, grad_sampling_loc: Tensor,
                            grad_attn_weight: Tensor,
                            im2col_step: int) -> None:
    """Gradients of :func:`ms_deform_attn_forward`: added to
    ``grad_value``, written over ``grad_sampling_loc`` and
    ``grad_attn_weight``.

    Args:
        value: The forward's value.
        value_spatial_shapes: The forward's level shapes.
        value_level_start_index: The forward's level starts.
        sampling_locations: The forward's sampling locations.
        attention_weights: The forward's attention weights.
        grad_output: ``(bs, num_queries, num_heads * channels)``.
        grad_value: Like ``value``; added to.
        grad_sampling_loc: Like ``sampling_locations``; overwritten.
        grad_attn_weight: Like ``attention_weights``; overwritten.
        im2col_step: Images mmcv's kernel processes at once; changes no
            result.
    """
    shapes, starts = _levels(value, value_spatial_shapes,
                             value_level_start_index, sampling_locations,
                             attention_weights)
    dtype = compute_dtype(value.dtype)
    with torch.enable_grad():
        leaves = [
            t.detach().to(dtype).requires_grad_(True)
            for t in (value, sampling_locations, attention_weights)
        ]
        output = _attend(leaves[0], shapes, starts, leaves[1], leaves[2])
        d_value, d_location, d_weight = torch.autograd.grad(
            output, leaves, grad_output.to(dtype))
    grad_value.add_(d_value)
    grad_sampling_loc.copy_(d_location)
    grad_attn_weight.copy_(d_weight)
