"""mmdist.ops.ms_deform_attn through mmcv's MultiScaleDeformableAttnFunction
(the CUDA path of mmcv's module) on CPU, against mmcv's own PyTorch
version with autograd."""

import pytest
import torch

import mmdist  # noqa: F401
from mmdist.ops import ms_deform_attn


pytestmark = pytest.mark.usefixtures('mmdist_ops_in_mmcv')


SHAPES = [(6, 5), (3, 3), (2, 1)]


def make(batch=2, heads=2, channels=4, queries=5, points=3, shapes=SHAPES,
         dtype=torch.float32, seed=0):
    g = torch.Generator().manual_seed(seed)
    spatial = torch.tensor(shapes)
    start = torch.cat([spatial.new_zeros(1), spatial.prod(1).cumsum(0)[:-1]])
    keys = int(spatial.prod(1).sum())
    value = torch.randn(batch, keys, heads, channels, generator=g,
                        dtype=torch.float64)
    # Some locations outside [0, 1]: those samples read zero padding.
    loc = torch.rand(batch, queries, heads, len(shapes), points, 2,
                     generator=g, dtype=torch.float64) * 1.2 - 0.1
    weights = torch.rand(batch, queries, heads, len(shapes), points,
                         generator=g, dtype=torch.float64)
    weights = weights / weights.sum((-1, -2), keepdim=True)
    leaves = [t.to(dtype).requires_grad_(True) for t in (value, loc, weights)]
    return leaves, spatial, start


def upstream_for(output, seed=1):
    return torch.randn(output.shape, generator=torch.Generator()
                       .manual_seed(seed), dtype=output.dtype)


@pytest.mark.parametrize('im2col_step', [1, 64])
def test_function_equals_pytorch_version(im2col_step):
    from mmcv.ops.multi_scale_deform_attn import (
        MultiScaleDeformableAttnFunction, multi_scale_deformable_attn_pytorch)
    (value, loc, weights), spatial, start = make()
    ours = MultiScaleDeformableAttnFunction.apply(value, spatial, start, loc,
                                                  weights, im2col_step)
    theirs = multi_scale_deformable_attn_pytorch(value, spatial, loc, weights)
    assert ours.shape == (2, 5, 2 * 4)
    torch.testing.assert_close(ours, theirs)
    upstream = upstream_for(ours)
    for a, b in zip(torch.autograd.grad(ours, [value, loc, weights], upstream),
                    torch.autograd.grad(theirs, [value, loc, weights],
                                        upstream)):
        torch.testing.assert_close(a, b)


def test_gradcheck_float64():
    from mmcv.ops.multi_scale_deform_attn import \
        MultiScaleDeformableAttnFunction
    leaves, spatial, start = make(batch=1, heads=2, channels=2, queries=2,
                                  points=2, shapes=[(3, 4), (2, 2)],
                                  dtype=torch.float64)
    assert torch.autograd.gradcheck(
        lambda v, loc, w: MultiScaleDeformableAttnFunction.apply(
            v, spatial, start, loc, w, 64), leaves)


def test_pixel_centres_and_outside():
    # Independent of grid_sample: location ((x + 0.5) / W, (y + 0.5) / H)
    # reads pixel (y, x) of its level; one a pixel beyond the map reads 0;
    # half a pixel right of a centre averages two pixels.
    from mmcv.ops.multi_scale_deform_attn import \
        MultiScaleDeformableAttnFunction
    spatial = torch.tensor([[3, 4], [2, 2]])
    start = torch.tensor([0, 12])
    value = torch.arange(16.).view(1, 16, 1, 1)
    loc = torch.tensor([[(2.5 / 4, 1.5 / 3), (0., 0.)],  # level 0: (1, 2)
                        [(0., 0.), (0.25, 0.75)],  # level 1: (1, 0)
                        [(5.5 / 4, 0.5), (0., 0.)],  # right of the map
                        [(2. / 4, 0.5 / 3), (0., 0.)]])  # between (0, 1|2)
    weights = torch.tensor([[1., 0.], [0., 1.], [1., 0.], [1., 0.]])
    out = MultiScaleDeformableAttnFunction.apply(
        value, spatial, start, loc.view(1, 4, 1, 2, 1, 2),
        weights.view(1, 4, 1, 2, 1), 64)
    torch.testing.assert_close(out.flatten(), torch.tensor([6., 14., 0., 1.5]))


def test_level_start_index_is_honoured():
    # mmcv's kernel finds each level at its start index: with spare keys
    # between the levels the result is that of the packed value, and the
    # spare keys get no gradient.
    from mmcv.ops.multi_scale_deform_attn import (
        MultiScaleDeformableAttnFunction, multi_scale_deformable_attn_pytorch)
    (value, loc, weights), spatial, _ = make()
    sizes = spatial.prod(1).tolist()
    gap = 3
    padded = torch.cat([torch.cat([part, torch.full_like(part[:, :gap], 9.)],
                                  1) for part in value.split(sizes, 1)],
                       1).detach().requires_grad_(True)
    start = torch.tensor([0, sizes[0] + gap, sizes[0] + sizes[1] + 2 * gap])
    ours = MultiScaleDeformableAttnFunction.apply(padded, spatial, start, loc,
                                                  weights, 64)
    theirs = multi_scale_deformable_attn_pytorch(value, spatial, loc, weights)
    torch.testing.assert_close(ours, theirs)
    upstream = upstream_for(ours)
    grad_padded, = torch.autograd.grad(ours, padded, upstream)
    grad_value, = torch.autograd.grad(theirs, value, upstream)
    kept = torch.cat([
        torch.arange(s, s + n) for s, n in zip(start.tolist(), sizes)])
    torch.testing.assert_close(grad_padded[:, kept], grad_value)
    spare = torch.ones(padded.size(1), dtype=torch.bool)
    spare[kept] = False
    assert torch.equal(grad_padded[:, spare],
                       torch.zeros_like(grad_padded[:, spare]))


def test_buffers_added_or_overwritten_as_mmcv_does():
    # mmcv's kernels add into grad_value (atomicAdd) and assign the
    # sampling-location and attention-weight gradients.
    from mmcv.ops.multi_scale_deform_attn import \
        multi_scale_deformable_attn_pytorch
    (value, loc, weights), spatial, start = make()
    out = multi_scale_deformable_attn_pytorch(value, spatial, loc, weights)
    upstream = upstream_for(out)
    expected = torch.autograd.grad(out, [value, loc, weights], upstream)
    buffers = [torch.ones_like(t) for t in (value, loc, weights)]
    ms_deform_attn.ms_deform_attn_backward(
        value.detach(), spatial, start, loc.detach(), weights.detach(),
        upstream, *buffers, im2col_step=64)
    torch.testing.assert_close(buffers[0], expected[0] + 1)
    torch.testing.assert_close(buffers[1], expected[1])
    torch.testing.assert_close(buffers[2], expected[2])


def test_half_is_computed_in_float32():
    from mmcv.ops.multi_scale_deform_attn import (
        MultiScaleDeformableAttnFunction, multi_scale_deformable_attn_pytorch)
    (value, loc, weights), spatial, start = make()
    half = value.detach().half().requires_grad_(True)
    # mmcv's Function casts locations and weights to the value's dtype.
    out = MultiScaleDeformableAttnFunction.apply(half, spatial, start, loc,
                                                 weights, 64)
    assert out.dtype == torch.float16
    ref = multi_scale_deformable_attn_pytorch(half.detach().float(), spatial,
                                              loc.detach().half().float(),
                                              weights.detach().half().float())
    torch.testing.assert_close(out, ref.half())
    out.float().sum().backward()
    assert half.grad.dtype == torch.float16 and loc.grad.dtype == torch.float32


def test_inconsistent_shapes_are_named():
    (value, loc, weights), spatial, start = make()
    with pytest.raises(ValueError, match='does not fit in the'):
        ms_deform_attn.ms_deform_attn_forward(value[:, :20], spatial, start,
                                              loc, weights, 64)
    with pytest.raises(ValueError, match='attention_weights'):
        ms_deform_attn.ms_deform_attn_forward(value, spatial, start, loc,
                                              weights[..., :2], 64)
