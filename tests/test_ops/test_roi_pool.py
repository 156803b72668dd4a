"""mmdist.ops.roi_pool through mmcv's RoIPool, against max pooling written
out as a loop from mmcv's CUDA kernel (roi_pool_cuda_kernel.cuh)."""
import math

import numpy as np
import pytest
import torch

import mmdist  # noqa: F401
from mmdist.ops import roi_pool as ours


pytestmark = pytest.mark.usefixtures('mmdist_ops_in_mmcv')


def reference(input, rois, pooled, scale, f=np.float32):
    """mmcv's kernel, one output element at a time, with its arithmetic in
    ``f`` (the kernel's ``scalar_t``): the output, and where each maximum
    was (-1: none)."""
    _, channels, height, width = input.shape
    ph_n, pw_n = pooled
    scale = np.float32(scale)  # the kernel takes a C float
    out = torch.zeros(len(rois), channels, ph_n, pw_n)
    where = torch.zeros(len(rois), channels, ph_n, pw_n, dtype=torch.long)
    for n, (b, x1, y1, x2, y2) in enumerate(rois.tolist()):
        x1, y1 = f(x1) * f(scale), f(y1) * f(scale)
        x2, y2 = (f(x2) + f(1)) * f(scale), (f(y2) + f(1)) * f(scale)
        roi_w, roi_h = x2 - x1, y2 - y1
        if roi_w <= 0 or roi_h <= 0:
            continue  # the kernel skips it: the zeroed buffers stay
        bin_w, bin_h = roi_w / f(pw_n), roi_h / f(ph_n)
        for c in range(channels):
            plane = input[int(b), c]
            for ph in range(ph_n):
                for pw in range(pw_n):
                    xs = math.floor(f(pw) * bin_w + x1)
                    ys = math.floor(f(ph) * bin_h + y1)
                    xe = math.ceil(f(pw + 1) * bin_w + x1)
                    ye = math.ceil(f(ph + 1) * bin_h + y1)
                    xs, xe = (min(max(v, 0), width) for v in (xs, xe))
                    ys, ye = (min(max(v, 0), height) for v in (ys, ye))
                    empty = ye <= ys or xe <= xs
                    best, arg = (0.0, -1) if empty else (-math.inf, -1)
                    for h in range(ys, ye):
                        for w in range(xs, xe):
                            if plane[h, w] > best:
                                best, arg = float(plane[h, w]), h * width + w
                    out[n, c, ph, pw], where[n, c, ph, pw] = best, arg
    return out, where


def backward_reference(grad_output, rois, where, shape):
    """Each output gradient goes to the element its maximum came from."""
    grad = torch.zeros(shape)
    for n, c, ph, pw in np.ndindex(*where.shape):
        arg = int(where[n, c, ph, pw])
        if arg >= 0:
            grad[int(rois[n, 0]), c].view(-1)[arg] += grad_output[n, c, ph,
                                                                  pw]
    return grad


def case(seed=0, ties=False):
    g = torch.Generator().manual_seed(seed)
    if ties:  # few distinct values: the first maximum must win
        feats = torch.randint(0, 3, (2, 3, 10, 12), generator=g).float()
    else:
        feats = torch.randn(2, 3, 10, 12, generator=g)
    rois = torch.tensor([
        [0, 3.3, 5.7, 30.2, 25.1],  # fractional corners
        [1, 0., 0., 47., 39.],  # the whole map at scale 1/4
        [1, -10.5, -3., 12.2, 8.9],  # partly above and left of the map
        [0, 40., 30., 80., 70.],  # partly below and right
        [1, 20., 20., 20.5, 21.],  # tiny: some bins empty
        [0, 60., 50., 90., 90.],  # outside the map: all bins empty
        [1, 8.8, 4.1, 9.6, 36.7],  # thin
    ])
    jitter = torch.rand(len(rois), 4, generator=g) * 0.9
    rois[:, 1:] += jitter
    return feats, rois


@pytest.mark.parametrize('pooled', [(2, 2), (3, 4), (7, 7)])
@pytest.mark.parametrize('scale', [0.25, 0.5, 1.0])
def test_values_and_gradient_follow_mmcv_kernel(pooled, scale):
    from mmcv.ops import roi_pool
    feats, rois = case(ties=pooled == (3, 4))
    feats.requires_grad_(True)
    out = roi_pool(feats, rois, pooled, scale)
    expected, where = reference(feats.detach(), rois, pooled, scale)
    assert torch.equal(out, expected)
    upstream = torch.randn(out.shape, generator=torch.Generator()
                           .manual_seed(1))
    out.backward(upstream)
    torch.testing.assert_close(
        feats.grad, backward_reference(upstream, rois, where, feats.shape))


def test_argmax_buffer_is_mmcv_int32_layout():
    feats, rois = case(ties=True)
    output = feats.new_zeros(len(rois), 3, 3, 3)
    argmax = torch.zeros(output.shape, dtype=torch.int32)
    ours.roi_pool_forward(feats, rois, output, argmax, pooled_height=3,
                          pooled_width=3, spatial_scale=0.5)
    expected, where = reference(feats, rois, (3, 3), 0.5)
    assert torch.equal(output, expected)
    assert torch.equal(argmax, where.int())
    assert (argmax == -1).any() and (argmax >= 0).any()
    # The backward adds into its buffer (mmcv's atomicAdd).
    grad = torch.ones_like(feats)
    ours.roi_pool_backward(torch.ones_like(output), rois, argmax, grad,
                           pooled_height=3, pooled_width=3,
                           spatial_scale=0.5)
    torch.testing.assert_close(
        grad, 1 + backward_reference(torch.ones_like(output), rois, where,
                                     feats.shape))


def test_malformed_roi_keeps_mmcv_quirk():
    # x2 < x1 - 1: mmcv's kernel skips the RoI, so its output stays 0 and
    # its argmax the wrapper's zero, which sends its gradient to (0, 0).
    from mmcv.ops import RoIPool
    feats = torch.randn(2, 2, 6, 6, requires_grad=True)
    rois = torch.tensor([[1., 5., 1., 2., 4.]])
    out = RoIPool(2, 1.0)(feats, rois)
    assert torch.equal(out, torch.zeros(1, 2, 2, 2))
    out.sum().backward()
    expected = torch.zeros(2, 2, 6, 6)
    expected[1, :, 0, 0] = 4
    assert torch.equal(feats.grad, expected)
    # Called directly: the skipped RoI leaves whatever the buffers held.
    output = torch.full((2, 2, 2, 2), 7.)
    argmax = torch.full((2, 2, 2, 2), 3, dtype=torch.int32)
    well_formed = torch.tensor([[0., 1., 1., 4., 4.]])
    ours.roi_pool_forward(feats.detach(), torch.cat([rois, well_formed]),
                          output, argmax, 2, 2, 1.0)
    assert torch.equal(output[0], torch.full((2, 2, 2), 7.))
    assert torch.equal(argmax[0], torch.full((2, 2, 2), 3, dtype=torch.int32))
    assert torch.equal(output[1],
                       reference(feats.detach(), well_formed, (2, 2), 1.0)[0]
                       [0])


def test_bins_differ_from_torchvision_off_the_pixel_grid():
    # mmcv does not round the RoI to whole pixels; torchvision does. They
    # agree on whole-pixel RoIs at scale 1 only.
    import torchvision
    from mmcv.ops import roi_pool
    feats = torch.randn(1, 1, 16, 16)
    whole = torch.tensor([[0., 2., 3., 11., 13.]])
    assert torch.equal(roi_pool(feats, whole, 3, 1.0),
                       torchvision.ops.roi_pool(feats, whole, 3, 1.0))
    fractional = torch.tensor([[0., 0.4, 0.6, 5.5, 4.2]])
    feats = torch.arange(256.).view(1, 1, 16, 16)
    mmcv_like = roi_pool(feats, fractional, 2, 1.0)
    assert torch.equal(mmcv_like, reference(feats, fractional, (2, 2),
                                            1.0)[0])
    assert not torch.equal(mmcv_like,
                           torchvision.ops.roi_pool(feats, fractional, 2,
                                                    1.0))


def test_half_input():
    from mmcv.ops import roi_pool
    feats, rois = case()
    out = roi_pool(feats.half(), rois.half(), (3, 3), 0.5)
    assert out.dtype == torch.float16
    # Max pooling is exact; the bins are computed in half, as mmcv does.
    expected = reference(feats.half().float(), rois.half(), (3, 3), 0.5,
                         f=np.float16)[0]
    assert torch.equal(out.float(), expected)


def test_empty_rois_and_bad_buffers():
    from mmcv.ops import roi_pool
    feats = torch.randn(1, 2, 5, 5, requires_grad=True)
    out = roi_pool(feats, torch.zeros(0, 5), 2, 1.0)
    assert out.shape == (0, 2, 2, 2)
    out.sum().backward()
    assert torch.equal(feats.grad, torch.zeros_like(feats))
    with pytest.raises(ValueError, match='argmax buffer must be int32'):
        ours.roi_pool_forward(feats.detach(), torch.zeros(1, 5),
                              torch.zeros(1, 2, 2, 2),
                              torch.zeros(1, 2, 2, 2, dtype=torch.long), 2,
                              2, 1.0)
