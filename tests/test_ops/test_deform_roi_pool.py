"""mmdist.ops.deform_roi_pool through mmcv's DeformRoIPool wrappers, against
the pooling written out as a loop from mmcv's CUDA kernel
(deform_roi_pool_cuda_kernel.cuh, bilinear rules of common_cuda_helper.hpp),
gradcheck, and torchvision's RoIAlign where there is no offset."""
import math

import numpy as np
import pytest
import torch
import torchvision
from torch.autograd import gradcheck

import mmdist  # noqa: F401
from mmdist.ops import deform_roi_pool as ours

pytestmark = pytest.mark.usefixtures('mmdist_ops_in_mmcv')

DEVICES = ['cpu', pytest.param('cuda', marks=pytest.mark.gpu)]


def _bilinear(plane, y, x):
    """mmcv's sample at ``(y, x)``: None where it reads 0, else the clamped
    corners ``(y0, y1, x0, x1)`` and weights ``(w00, w01, w10, w11)`` of the
    pixels ``(y0, x0), (y0, x1), (y1, x0), (y1, x1)``."""
    height, width = plane.shape
    if y < -1 or y > height or x < -1 or x > width:
        return None
    y, x = max(y, 0.0), max(x, 0.0)
    y0, x0 = int(y), int(x)
    if y0 >= height - 1:
        y0 = y1 = height - 1
        y = float(y0)
    else:
        y1 = y0 + 1
    if x0 >= width - 1:
        x0 = x1 = width - 1
        x = float(x0)
    else:
        x1 = x0 + 1
    ly, lx = y - y0, x - x0
    hy, hx = 1 - ly, 1 - lx
    return (y0, y1, x0, x1), (hy * hx, hy * lx, ly * hx, ly * lx)


def kernel_loop(input, rois, offset, pooled, scale, ratio, gamma, upstream):
    """The kernel, one sample at a time in float64: the output and, for the
    upstream gradient ``upstream``, the input and offset gradients by the
    kernel's formulas (offset gradient None without an offset)."""
    input = input.detach().double().cpu().numpy()
    upstream = upstream.detach().double().cpu().numpy()
    num_rois, channels = len(rois), input.shape[1]
    ph_n, pw_n = pooled
    scale, gamma = float(np.float32(scale)), float(np.float32(gamma))
    out = np.zeros((num_rois, channels, ph_n, pw_n))
    grad_input = np.zeros_like(input)
    grad_offset = None if offset is None else np.zeros((num_rois, 2, ph_n,
                                                        pw_n))
    for n, (b, x1, y1, x2, y2) in enumerate(rois.double().tolist()):
        start_w, start_h = x1 * scale - 0.5, y1 * scale - 0.5
        roi_w = x2 * scale - 0.5 - start_w
        roi_h = y2 * scale - 0.5 - start_h
        bin_w, bin_h = roi_w / pw_n, roi_h / ph_n
        # ceilf: in float32.
        grid_h = ratio if ratio > 0 else math.ceil(np.float32(roi_h / ph_n))
        grid_w = ratio if ratio > 0 else math.ceil(np.float32(roi_w / pw_n))
        count = max(grid_h * grid_w, 1)
        for c, ph, pw in np.ndindex(channels, ph_n, pw_n):
            plane = input[int(b), c]
            sh, sw = start_h, start_w
            if offset is not None:
                sw += gamma * roi_w * offset[n, 0, ph, pw].item()
                sh += gamma * roi_h * offset[n, 1, ph, pw].item()
            g = upstream[n, c, ph, pw] / count
            total = 0.0
            for iy, ix in np.ndindex(max(grid_h, 0), max(grid_w, 0)):
                y = sh + ph * bin_h + (iy + .5) * bin_h / grid_h
                x = sw + pw * bin_w + (ix + .5) * bin_w / grid_w
                found = _bilinear(plane, y, x)
                if found is None:
                    continue
                (y0, y1, x0, x1), weights = found
                corners = [(y0, x0), (y0, x1), (y1, x0), (y1, x1)]
                for w, (r, q) in zip(weights, corners):
                    total += w * plane[r, q]
                    grad_input[int(b), c, r, q] += g * w
                if offset is not None:
                    v00, v10 = plane[y0, x0], plane[y0, x1]
                    v01, v11 = plane[y1, x0], plane[y1, x1]
                    grad_offset[n, 0, ph, pw] += gamma * roi_w * g * (
                        v11 * (y - y0) + v10 * (y1 - y) + v01 *
                        (y0 - y) + v00 * (y - y1))
                    grad_offset[n, 1, ph, pw] += gamma * roi_h * g * (
                        v11 * (x - x0) + v01 * (x1 - x) + v10 *
                        (x0 - x) + v00 * (x - x1))
            out[n, c, ph, pw] = total / count
    as_tensor = torch.from_numpy
    return (as_tensor(out), as_tensor(grad_input),
            None if grad_offset is None else as_tensor(grad_offset))


# RoIs in feature-map pixels (divide by the scale for image pixels).
MAP_ROIS = [
    [0, 1.3, 2.2, 7.7, 6.1],  # inside
    [1, -3.2, -2.1, 12.6, 10.4],  # beyond every side: clamped and zero
    [1, 0.2, 0.3, 10.9, 8.8],  # the whole map: grids of 4 by 5
    [0, 5.1, 4.4, 4.6, 4.9],  # x2 < x1: adaptive grid 0, output 0
    [1, 20., 15., 25., 18.],  # below and right of the map: zeros
    [0, 3.05, 6.6, 3.3, 8.95],  # thin: one sample across
]


def case(device, dtype=torch.float64, scale=1.0, pooled=(2, 3),
         with_offset=True, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(2, 3, 9, 11, generator=g, dtype=torch.float64)
    rois = torch.tensor(MAP_ROIS, dtype=torch.float64)
    rois[:, 1:] /= scale
    offset = None
    if with_offset:
        offset = torch.randn(len(rois), 2, *pooled, generator=g,
                             dtype=torch.float64) * 1.5
        offset = offset.to(device, dtype).requires_grad_(True)
    return (x.to(device, dtype).requires_grad_(True), rois.to(device, dtype),
            offset)


@pytest.mark.parametrize('device', DEVICES)
@pytest.mark.parametrize('dtype', [torch.float64, torch.float32])
@pytest.mark.parametrize('with_offset', [False, True])
@pytest.mark.parametrize('ratio', [0, 2])
@pytest.mark.parametrize('scale', [1.0, 0.5])
def test_values_and_gradients_follow_mmcv_kernel(device, dtype, with_offset,
                                                 ratio, scale):
    from mmcv.ops import deform_roi_pool
    pooled, gamma = (2, 3), 0.1
    x, rois, offset = case(device, dtype, scale, pooled, with_offset)
    out = deform_roi_pool(x, rois, offset, pooled, scale, ratio, gamma)
    upstream = torch.randn(out.shape, generator=torch.Generator()
                           .manual_seed(1), dtype=torch.float64)
    out.backward(upstream.to(device, dtype))
    expected, grad_x, grad_offset = kernel_loop(x, rois.cpu(), offset,
                                                pooled, scale, ratio, gamma,
                                                upstream)
    tol = dict(rtol=1e-10, atol=1e-10) if dtype == torch.float64 else dict(
        rtol=1e-4, atol=1e-4)
    assert out.dtype == dtype
    torch.testing.assert_close(out.cpu().double(), expected, **tol)
    torch.testing.assert_close(x.grad.cpu().double(), grad_x, **tol)
    if with_offset:
        torch.testing.assert_close(offset.grad.cpu().double(), grad_offset,
                                   **tol)
    # The cases reach the zero border, the clamped rows and columns, and
    # RoIs that pool nothing.
    assert (expected[4] == 0).all() and (expected[3] == 0).all() == (
        ratio == 0)


# Samples strictly inside the 9 x 11 map (and one RoI wholly outside),
# where mmcv's offset gradient is the derivative of its forward.
INSIDE_ROIS = [[0, 2.1, 2.3, 8.2, 6.4], [1, 3.7, 1.6, 6.4, 7.3],
               [0, -20., -15., -10., -5.]]


@pytest.mark.parametrize('device', DEVICES)
@pytest.mark.parametrize('ratio', [0, 2])
def test_gradcheck_input_and_offset(device, ratio):
    from mmcv.ops import deform_roi_pool
    g = torch.Generator().manual_seed(2)
    x = torch.randn(2, 1, 9, 11, generator=g, dtype=torch.float64)
    rois = torch.tensor(INSIDE_ROIS, dtype=torch.float64, device=device)
    offset = torch.randn(3, 2, 2, 2, generator=g, dtype=torch.float64) * .5
    x = x.to(device).requires_grad_(True)
    offset = offset.to(device).requires_grad_(True)
    assert gradcheck(
        lambda x, off: deform_roi_pool(x, rois, off, (2, 2), 1.0, ratio, .1),
        (x, offset))
    # Without an offset the input gradient is exact at the borders too.
    rois = torch.tensor(MAP_ROIS, dtype=torch.float64, device=device)
    assert gradcheck(
        lambda x: deform_roi_pool(x, rois, None, (2, 2), 1.0, ratio, .1),
        (x, ), fast_mode=True)


def test_border_rule_and_offset_gradient_by_hand():
    # One 1x1 bin with one sample each, placed by the RoI: y = (y1 + y2) / 2
    # - 0.5, x alike. mmcv reads samples with -1 <= y <= H, clamps them to
    # the rows 0 and H - 1, and its offset gradient takes the unclamped y
    # with the clamped rows. Values worked by hand; the forward's own
    # slope along x on the first two is gamma * roi_w * 3 = 0.15.
    from mmcv.ops import deform_roi_pool
    x = torch.tensor([[[[0., 1., 4.], [2., 7., 3.], [5., 6., 9.]]]],
                     dtype=torch.float64, requires_grad=True)
    rois = torch.tensor([
        [0, 1.5, 2.75, 2.0, 3.25],  # (y, x) = (2.5, 1.25): last row
        [0, 1.5, -0.25, 2.0, 0.25],  # (-0.5, 1.25): above row 0
        [0, 1.5, 3.25, 2.0, 3.75],  # (3, 1.25): y = H still reads
        [0, 1.5, -0.75, 2.0, -0.25],  # (-1, 1.25): y = -1 still reads
        [0, 1.5, -1.0, 2.0, -0.5],  # (-1.25, 1.25): reads 0
    ], dtype=torch.float64)
    offset = torch.zeros(5, 2, 1, 1, dtype=torch.float64, requires_grad=True)
    out = deform_roi_pool(x, rois, offset, 1, 1.0, 1, 0.1)
    torch.testing.assert_close(
        out.flatten(),
        torch.tensor([6.75, 1.75, 6.75, 1.75, 0.], dtype=torch.float64))
    out.sum().backward()
    torch.testing.assert_close(
        offset.grad.flatten(),
        torch.tensor([0., 0., .325, .2125, 0., 0., .5, .2125, 0., 0.],
                     dtype=torch.float64))
    grad_x = torch.zeros(3, 3, dtype=torch.float64)
    grad_x[2, 1:] = grad_x[0, 1:] = torch.tensor([1.5, .5],
                                                 dtype=torch.float64)
    torch.testing.assert_close(x.grad[0, 0], grad_x)
    # The forward's own slope (finite differences) differs on the first two.
    step = torch.zeros_like(offset)
    step[:, 0] = 1e-6
    with torch.no_grad():
        moved = deform_roi_pool(x, rois, offset + step, 1, 1.0, 1, 0.1)
    torch.testing.assert_close(((moved - out) / 1e-6).flatten()[:2],
                               torch.tensor([0.15, 0.15],
                                            dtype=torch.float64))
    _, loop_x, loop_offset = kernel_loop(x, rois, offset.detach(), (1, 1),
                                         1.0, 1, 0.1, torch.ones(5, 1, 1, 1))
    torch.testing.assert_close(offset.grad, loop_offset)
    torch.testing.assert_close(x.grad, loop_x)


@pytest.mark.parametrize('device', DEVICES)
@pytest.mark.parametrize('ratio', [0, 2])
def test_no_offset_is_torchvision_aligned_roi_align(device, ratio):
    from mmcv.ops import DeformRoIPool, deform_roi_pool
    x, rois, _ = case(device, torch.float32, scale=0.5, with_offset=False)
    out = DeformRoIPool((2, 3), 0.5, ratio)(x, rois)
    theirs = torchvision.ops.roi_align(x, rois, (2, 3), 0.5, ratio, True)
    torch.testing.assert_close(out, theirs)
    upstream = torch.randn_like(out)
    torch.testing.assert_close(
        torch.autograd.grad(out, x, upstream)[0],
        torch.autograd.grad(theirs, x, upstream)[0])
    # A zero offset pools as none, and still gets its gradient.
    zero = torch.zeros(len(rois), 2, 2, 3, device=device, requires_grad=True)
    moved = deform_roi_pool(x, rois, zero, (2, 3), 0.5, ratio, 0.1)
    torch.testing.assert_close(moved, out)
    moved.backward(upstream)
    assert zero.grad.abs().sum() > 0


@pytest.mark.parametrize('device', DEVICES)
@pytest.mark.parametrize('modulated', [False, True])
def test_pack_modules(device, modulated):
    from mmcv.ops import DeformRoIPoolPack, ModulatedDeformRoIPoolPack
    pack = ModulatedDeformRoIPoolPack if modulated else DeformRoIPoolPack
    pooled, scale = (2, 2), 0.5
    module = pack(pooled, 2, deform_fc_channels=8, spatial_scale=scale,
                  sampling_ratio=0, gamma=0.1).double().to(device)
    g = torch.Generator().manual_seed(3)
    with torch.no_grad():  # learnt offsets and masks, not the zero init
        for layer in ([module.offset_fc[-1]] +
                      ([module.mask_fc[2]] if modulated else [])):
            layer.weight.copy_(torch.randn(layer.weight.shape, generator=g,
                                           dtype=torch.float64) * .3)
            layer.bias.copy_(torch.randn(layer.bias.shape, generator=g,
                                         dtype=torch.float64) * .3)
    x = torch.randn(2, 2, 9, 11, generator=g, dtype=torch.float64)
    x = x.to(device).requires_grad_(True)
    rois = torch.tensor(INSIDE_ROIS, dtype=torch.float64) / scale
    rois[:, 0] *= scale
    rois = rois.to(device)
    out = module(x, rois)
    # The wrapper's steps with the loop in place of the op.
    none = torch.zeros(3, 2, *pooled, dtype=torch.float64)
    first = kernel_loop(x, rois.cpu(), None, pooled, scale, 0, 0.1, none)[0]
    flat = first.to(device).view(3, -1)
    offset = module.offset_fc(flat).view(3, 2, *pooled)
    expected = kernel_loop(x, rois.cpu(), offset.detach().cpu(), pooled,
                           scale, 0, 0.1, none)[0].to(device)
    if modulated:
        expected = expected * module.mask_fc(flat).view(3, 1, *pooled)
    assert offset.abs().max() > 0.1
    torch.testing.assert_close(out, expected, rtol=1e-10, atol=1e-10)
    assert gradcheck(lambda x: module(x, rois), (x, ), fast_mode=True)


@pytest.mark.parametrize('device', DEVICES)
@pytest.mark.parametrize('dtype', [torch.float64, torch.float16])
def test_buffers_overwritten_and_added_to(device, dtype):
    x, rois, offset = case(device, dtype)
    x, offset = x.detach(), offset.detach()
    output = torch.full((len(rois), 3, 2, 3), 7., dtype=dtype, device=device)
    ours.deform_roi_pool_forward(x, rois, offset, output, pooled_height=2,
                                 pooled_width=3, spatial_scale=1.0,
                                 sampling_ratio=0, gamma=0.1)
    upstream = torch.randn(output.shape, dtype=torch.float64).to(dtype)
    expected, grad_x, grad_offset = kernel_loop(x, rois.cpu(), offset,
                                                (2, 3), 1.0, 0, 0.1,
                                                upstream)
    tol = {} if dtype == torch.float64 else dict(rtol=1e-2, atol=5e-2)

    def close(actual, expected):
        assert actual.dtype == dtype
        torch.testing.assert_close(actual.cpu().double(), expected, **tol)

    close(output, expected)
    grad_input, grad_off = torch.ones_like(x), torch.ones_like(offset)
    ours.deform_roi_pool_backward(upstream.to(device), x, rois, offset,
                                  grad_input, grad_off, pooled_height=2,
                                  pooled_width=3, spatial_scale=1.0,
                                  sampling_ratio=0, gamma=0.1)
    close(grad_input, 1 + grad_x)
    close(grad_off, 1 + grad_offset)
    # An empty offset: none, and its empty gradient buffer is left alone.
    empty = x.new_zeros(0)
    ours.deform_roi_pool_backward(upstream.to(device), x, rois, empty,
                                  grad_input, x.new_zeros(0), 2, 3, 1.0, 0,
                                  0.1)
    without = kernel_loop(x, rois.cpu(), None, (2, 3), 1.0, 0, 0.1,
                          upstream)[1]
    close(grad_input, 1 + grad_x + without)


def test_small_chunks_change_nothing(monkeypatch):
    from mmcv.ops import deform_roi_pool
    x, rois, offset = case('cpu')
    results = []
    for budget in (ours._BUDGET, 3 * 7):
        monkeypatch.setattr(ours, '_BUDGET', budget)
        out = deform_roi_pool(x, rois, offset, (2, 3), 1.0, 0, 0.1)
        results.append(
            (out, *torch.autograd.grad(out.square().sum(), (x, offset))))
    for a, b in zip(*results):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize('device', DEVICES)
def test_half_input(device):
    from mmcv.ops import deform_roi_pool
    x, rois, offset = case(device, torch.float16)
    out = deform_roi_pool(x, rois, offset, (2, 3), 1.0, 0, 0.1)
    assert out.dtype == torch.float16
    out.float().sum().backward()
    assert x.grad.dtype == offset.grad.dtype == torch.float16
    expected, grad_x, grad_offset = kernel_loop(x, rois.cpu(), offset,
                                                (2, 3), 1.0, 0, 0.1,
                                                torch.ones(out.shape))
    tol = dict(rtol=1e-2, atol=1e-2)
    torch.testing.assert_close(out.cpu().double(), expected, **tol)
    torch.testing.assert_close(x.grad.cpu().double(), grad_x, **tol)
    torch.testing.assert_close(offset.grad.cpu().double(), grad_offset,
                               rtol=1e-2, atol=5e-2)


def test_no_rois():
    from mmcv.ops import deform_roi_pool
    x = torch.randn(1, 2, 5, 5, requires_grad=True)
    offset = torch.zeros(0, 2, 2, 2, requires_grad=True)
    out = deform_roi_pool(x, torch.zeros(0, 5), offset, 2)
    assert out.shape == (0, 2, 2, 2)
    out.sum().backward()
    assert torch.equal(x.grad, torch.zeros_like(x))


def test_bad_arguments():
    x = torch.randn(2, 2, 5, 5)
    rois = torch.tensor([[0., 0., 0., 3., 3.]])
    output = torch.zeros(1, 2, 2, 2)

    def forward(x=x, rois=rois, offset=torch.zeros(0), output=output):
        ours.deform_roi_pool_forward(x, rois, offset, output, 2, 2, 1.0, 0,
                                     0.1)

    with pytest.raises(ValueError, match=r'must be \(K, 2, pooled_h'):
        forward(offset=torch.zeros(1, 2, 3, 3))
    with pytest.raises(ValueError, match=r'rois must be \(K, 5\)'):
        forward(rois=torch.zeros(1, 4))
    with pytest.raises(ValueError, match=r'batch indices must lie in'):
        forward(rois=torch.tensor([[2., 0., 0., 3., 3.]]))
    with pytest.raises(ValueError, match='output must be'):
        forward(output=torch.zeros(1, 2, 3, 3))
    with pytest.raises(ValueError, match=r'input must be \(N, C, H, W\)'):
        forward(x=x[0])
    with pytest.raises(ValueError, match='grad_offset must be'):
        ours.deform_roi_pool_backward(output, x, rois,
                                      torch.zeros(1, 2, 2, 2), x.clone(),
                                      torch.zeros(0), 2, 2, 1.0, 0, 0.1)
