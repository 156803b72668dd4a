"""mmdist.ops.deform_conv through mmcv's own DCNv1/DCNv2 wrappers, against
torchvision's deform_conv2d with autograd, against F.conv2d for zero
offsets, and, for the offset gradient, against mmcv's coordinate weight
written out (zero on and past the border, where torchvision's is not)."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import torchvision

import mmdist  # noqa: F401
from mmdist.ops import deform_conv


pytestmark = pytest.mark.usefixtures('mmdist_ops_in_mmcv')


# (groups, deform_groups, stride, padding, dilation, kernel)
CASES = [
    (1, 1, 1, 1, 1, (3, 3)),
    (2, 2, 2, 1, 1, (3, 3)),
    (1, 2, 1, 2, 2, (3, 3)),
    (2, 1, (2, 1), (1, 0), (1, 2), (3, 2)),
]


def make(case, batch=2, channels=4, out_channels=6, size=(9, 8), seed=0,
         dtype=torch.float32, offset_scale=1.5):
    """Input, offset, mask, weight and bias for ``case``, all leaves."""
    groups, dgroups, stride, padding, dilation, kernel = case
    stride, padding, dilation = (torch.nn.modules.utils._pair(v)
                                 for v in (stride, padding, dilation))
    g = torch.Generator().manual_seed(seed)
    out_size = [(size[d] + 2 * padding[d] - dilation[d] *
                 (kernel[d] - 1) - 1) // stride[d] + 1 for d in (0, 1)]
    taps = dgroups * kernel[0] * kernel[1]

    def leaf(*shape, scale=1.0):
        t = torch.randn(*shape, generator=g, dtype=torch.float64) * scale
        return t.to(dtype).requires_grad_(True)

    x = leaf(batch, channels, *size)
    # Offsets of a few pixels: samples land between pixels and off the map.
    offset = leaf(batch, 2 * taps, *out_size, scale=offset_scale)
    mask = torch.rand(batch, taps, *out_size, generator=g,
                      dtype=torch.float64).to(dtype).requires_grad_(True)
    weight = leaf(out_channels, channels // groups, *kernel)
    bias = leaf(out_channels)
    return dict(x=x, offset=offset, mask=mask, weight=weight, bias=bias,
                stride=stride, padding=padding, dilation=dilation,
                groups=groups, dgroups=dgroups)


def grads(output, inputs, seed=1):
    g = torch.Generator().manual_seed(seed)
    upstream = torch.randn(output.shape, generator=g, dtype=output.dtype)
    return torch.autograd.grad(output, inputs, upstream)


def assert_close(ours, theirs, tol=1e-5):
    for a, b in zip(ours, theirs):
        torch.testing.assert_close(a, b, rtol=tol, atol=tol)


@pytest.mark.parametrize('case', CASES)
def test_dcnv1_equals_torchvision_with_autograd(case):
    from mmcv.ops import deform_conv2d
    t = make(case)
    leaves = [t['x'], t['offset'], t['weight']]
    ours = deform_conv2d(t['x'], t['offset'], t['weight'], t['stride'],
                         t['padding'], t['dilation'], t['groups'],
                         t['dgroups'], False, 1)
    theirs = torchvision.ops.deform_conv2d(
        t['x'], t['offset'], t['weight'], stride=t['stride'],
        padding=t['padding'], dilation=t['dilation'])
    assert ours.shape == theirs.shape
    assert_close([ours], [theirs])
    assert_close(grads(ours, leaves), grads(theirs, leaves))


@pytest.mark.parametrize('case', CASES)
@pytest.mark.parametrize('with_bias', [True, False])
def test_dcnv2_equals_torchvision_with_autograd(case, with_bias):
    from mmcv.ops import modulated_deform_conv2d
    t = make(case)
    bias = t['bias'] if with_bias else None
    leaves = [t['x'], t['offset'], t['mask'], t['weight']] + (
        [bias] if with_bias else [])
    ours = modulated_deform_conv2d(t['x'], t['offset'], t['mask'],
                                   t['weight'], bias, t['stride'],
                                   t['padding'], t['dilation'], t['groups'],
                                   t['dgroups'])
    theirs = torchvision.ops.deform_conv2d(
        t['x'], t['offset'], t['weight'], bias, stride=t['stride'],
        padding=t['padding'], dilation=t['dilation'], mask=t['mask'])
    assert_close([ours], [theirs])
    assert_close(grads(ours, leaves), grads(theirs, leaves))


@pytest.mark.parametrize('case', CASES)
def test_zero_offsets_are_a_plain_convolution(case):
    # Independent of torchvision: no offset (and a mask of ones) samples
    # the kernel's own grid, which F.conv2d convolves.
    from mmcv.ops import deform_conv2d, modulated_deform_conv2d
    t = make(case, offset_scale=0.0)
    x, weight, bias = t['x'], t['weight'], t['bias']
    conv, plain = (F.conv2d(x, weight, b, t['stride'], t['padding'],
                            t['dilation'], t['groups']) for b in (bias, None))
    v1 = deform_conv2d(x, t['offset'], weight, t['stride'], t['padding'],
                       t['dilation'], t['groups'], t['dgroups'])
    ones = torch.ones_like(t['mask'])
    v2 = modulated_deform_conv2d(x, t['offset'], ones, weight, bias,
                                 t['stride'], t['padding'], t['dilation'],
                                 t['groups'], t['dgroups'])
    assert_close([v1, v2], [plain, conv])
    assert_close(grads(v1, [x, weight]), grads(plain, [x, weight]))
    assert_close(grads(v2, [x, weight, bias]), grads(conv, [x, weight, bias]))


def test_offset_layout_is_dy_dx_per_tap():
    # A 1x1 kernel shifted by a whole pixel reads the neighbouring pixel:
    # channel 0 moves along the height, channel 1 along the width.
    from mmcv.ops import deform_conv2d
    x = torch.arange(25.).view(1, 1, 5, 5)
    weight = torch.ones(1, 1, 1, 1)
    down = torch.zeros(1, 2, 5, 5)
    down[:, 0] = 1
    right = torch.zeros(1, 2, 5, 5)
    right[:, 1] = 1
    assert torch.equal(deform_conv2d(x, down, weight)[0, 0, :4], x[0, 0, 1:])
    assert torch.equal(
        deform_conv2d(x, right, weight)[0, 0, :, :4], x[0, 0, :, 1:])


def test_modules_and_im2col_step():
    # mmcv's modules, and a batch cut into im2col steps: same result.
    from mmcv.ops import DeformConv2d, ModulatedDeformConv2d
    torch.manual_seed(0)
    dcn = DeformConv2d(4, 6, 3, padding=1, groups=2, deform_groups=2,
                       im2col_step=2)
    mdcn = ModulatedDeformConv2d(4, 6, 3, padding=1, groups=2,
                                 deform_groups=2)
    x = torch.randn(4, 4, 6, 6)
    offset = torch.randn(4, 36, 6, 6)
    mask = torch.rand(4, 18, 6, 6)
    assert_close([dcn(x, offset)], [
        torchvision.ops.deform_conv2d(x, offset, dcn.weight, padding=1)])
    assert_close([mdcn(x, offset, mask)], [
        torchvision.ops.deform_conv2d(x, offset, mdcn.weight, mdcn.bias,
                                      padding=1, mask=mask)])


def test_gradcheck_float64():
    from mmcv.ops.deform_conv import DeformConv2dFunction
    from mmcv.ops.modulated_deform_conv import ModulatedDeformConv2dFunction
    t = make((2, 2, 1, 1, 1, (2, 2)), batch=1, channels=4, out_channels=2,
             size=(4, 4), dtype=torch.float64, offset_scale=0.7)
    assert torch.autograd.gradcheck(
        lambda x, o, w: DeformConv2dFunction.apply(x, o, w, 1, 1, 1, 2, 2),
        (t['x'], t['offset'], t['weight']))
    assert torch.autograd.gradcheck(
        lambda x, o, m, w, b: ModulatedDeformConv2dFunction.apply(
            x, o, m, w, b, 1, 1, 1, 2, 2),
        (t['x'], t['offset'], t['mask'], t['weight'], t['bias']))


def test_half_is_computed_in_float32():
    from mmcv.ops import modulated_deform_conv2d
    t = make(CASES[1])
    half = [t[k].detach().half().requires_grad_(True)
            for k in ('x', 'offset', 'mask', 'weight', 'bias')]
    out = modulated_deform_conv2d(*half, t['stride'], t['padding'],
                                  t['dilation'], t['groups'], t['dgroups'])
    x, offset, mask, weight, bias = (h.detach().float() for h in half)
    ref = torchvision.ops.deform_conv2d(
        x, offset, weight, bias, stride=t['stride'], padding=t['padding'],
        dilation=t['dilation'], mask=mask)
    assert out.dtype == torch.float16
    torch.testing.assert_close(out, ref.half())
    out.float().sum().backward()
    assert all(h.grad.dtype == torch.float16 and h.grad.isfinite().all()
               for h in half)


def conv_args(t):
    return dict(kW=3, kH=3, dW=t['stride'][1], dH=t['stride'][0],
                padW=t['padding'][1], padH=t['padding'][0],
                dilationW=t['dilation'][1], dilationH=t['dilation'][0],
                group=t['groups'], deformable_group=t['dgroups'],
                im2col_step=1)


def test_dcnv1_buffers_are_added_or_overwritten_as_mmcv_does():
    # mmcv's kernels add the input and weight gradients (atomicAdd, addmm_
    # with beta=1 and alpha=scale) and assign the offset gradient.
    t = make(CASES[1])
    x, offset, weight = (t[k].detach() for k in ('x', 'offset', 'weight'))
    out = torchvision.ops.deform_conv2d(
        t['x'], t['offset'], t['weight'], stride=t['stride'],
        padding=t['padding'], dilation=t['dilation'])
    upstream = torch.randn_like(out)
    d_x, d_offset, d_weight = torch.autograd.grad(
        out, [t['x'], t['offset'], t['weight']], upstream)
    empty = x.new_empty(0)

    output = torch.full_like(out, 7.)
    deform_conv.deform_conv_forward(x, weight, offset, output, empty, empty,
                                    **conv_args(t))
    assert_close([output], [out])
    grad_x, grad_offset = torch.ones_like(x), torch.ones_like(offset)
    deform_conv.deform_conv_backward_input(x, offset, upstream, grad_x,
                                           grad_offset, weight, empty,
                                           **conv_args(t))
    assert_close([grad_x, grad_offset], [d_x + 1, d_offset])
    grad_weight = torch.ones_like(weight)
    deform_conv.deform_conv_backward_parameters(
        x, offset, upstream, grad_weight, empty, empty, scale=0.5,
        **conv_args(t))
    assert_close([grad_weight], [1 + 0.5 * d_weight])


def test_dcnv2_buffers_are_added_or_overwritten_as_mmcv_does():
    t = make(CASES[1])
    names = ('x', 'offset', 'mask', 'weight', 'bias')
    x, offset, mask, weight, bias = (t[k].detach() for k in names)
    out = torchvision.ops.deform_conv2d(
        t['x'], t['offset'], t['weight'], t['bias'], stride=t['stride'],
        padding=t['padding'], dilation=t['dilation'], mask=t['mask'])
    upstream = torch.randn_like(out)
    expected = torch.autograd.grad(out, [t[k] for k in names], upstream)
    args = dict(kernel_h=3, kernel_w=3, stride_h=2, stride_w=2, pad_h=1,
                pad_w=1, dilation_h=1, dilation_w=1, group=2,
                deformable_group=2, with_bias=True)
    empty = x.new_empty(0)
    buffers = [torch.ones_like(v) for v in (x, offset, mask, weight, bias)]
    deform_conv.modulated_deform_conv_backward(
        x, weight, bias, empty, offset, mask, empty, buffers[0], buffers[3],
        buffers[4], buffers[1], buffers[2], upstream, **args)
    added = (True, False, False, True, True)  # input, weight, bias: added
    assert_close(buffers,
                 [e + 1 if a else e for e, a in zip(expected, added)])
    output = torch.full_like(out, 7.)
    deform_conv.modulated_deform_conv_forward(x, weight, bias, empty, offset,
                                              mask, output, empty, **args)
    assert_close([output], [out])


def test_wrong_groups_name_the_mismatch():
    t = make(CASES[0])
    x, offset, weight = (t[k].detach() for k in ('x', 'offset', 'weight'))
    output = x.new_empty(2, 6, 9, 8)
    empty = x.new_empty(0)
    with pytest.raises(ValueError, match='groups=2 does not fit'):
        deform_conv.deform_conv_forward(x, weight, offset, output, empty,
                                        empty, **dict(conv_args(t), group=2))
    with pytest.raises(ValueError, match='offset .* must be'):
        deform_conv.deform_conv_forward(
            x, weight, offset, output, empty, empty,
            **dict(conv_args(t), deformable_group=2))


def coordinate_weight(h, w, plane, direction):
    """mmcv's coordinate weight (``dmcn_get_coordinate_weight`` in its
    kernels) written out: the derivative of the bilinear sample at ``(h,
    w)`` along the height (0) or width (1), zero on or past the border."""
    height, width = plane.shape
    if h <= -1 or h >= height or w <= -1 or w >= width:
        return 0.0
    h_low, w_low = math.floor(h), math.floor(w)
    total = 0.0
    for dh in (0, 1):
        for dw in (0, 1):
            y, x = h_low + dh, w_low + dw
            if not (0 <= y < height and 0 <= x < width):
                continue
            # d/dh of the bilinear weight of (y, x), or d/dw.
            along_h = (1 if dh else -1) * (1 - abs(w - x))
            along_w = (1 if dw else -1) * (1 - abs(h - y))
            total += (along_h if direction == 0 else along_w) * plane[y, x]
    return total


def offset_gradient_reference(x, offset, mask, weight, grad_out, stride,
                              padding, dilation):
    """The offset gradient of DCN (v2, or v1 with a mask of ones) as mmcv's
    kernels compute it, one value at a time (one group, one deformable
    group)."""
    batch, channels, _, _ = x.shape
    _, _, kernel_h, kernel_w = weight.shape
    out_h, out_w = grad_out.shape[2:]
    # Gradient w.r.t. the sampled columns: (N, C, kh, kw, H_out, W_out).
    columns = torch.einsum('ockl,nohw->ncklhw', weight.double(),
                           grad_out.double()).numpy()
    x, offset, mask = (t.detach().double().numpy() for t in (x, offset, mask))
    grad = np.zeros((batch, 2 * kernel_h * kernel_w, out_h, out_w))
    for n, i, j, oy, ox in np.ndindex(batch, kernel_h, kernel_w, out_h,
                                      out_w):
        tap = i * kernel_w + j
        h = oy * stride - padding + i * dilation + offset[n, 2 * tap, oy, ox]
        w = ox * stride - padding + j * dilation + offset[n, 2 * tap + 1, oy,
                                                          ox]
        for direction in (0, 1):
            grad[n, 2 * tap + direction, oy, ox] = sum(
                columns[n, c, i, j, oy, ox] *
                coordinate_weight(h, w, x[n, c], direction) *
                mask[n, tap, oy, ox] for c in range(channels))
    return torch.from_numpy(grad)


@pytest.mark.parametrize('offsets', ['zero', 'whole pixels', 'random'])
@pytest.mark.parametrize('modulated', [False, True])
def test_offset_gradient_is_mmcvs_at_the_border(offsets, modulated):
    # Zero offsets with padding put the border taps exactly on h == -1 or
    # w == -1, where mmcv's coordinate weight is zero and torchvision's is
    # not; whole-pixel offsets put taps on and past every border.
    from mmcv.ops import deform_conv2d, modulated_deform_conv2d
    g = torch.Generator().manual_seed(3)
    x = torch.randn(2, 3, 5, 6, generator=g)
    weight = torch.randn(4, 3, 3, 3, generator=g)
    offset = {
        'zero': torch.zeros(2, 18, 5, 6),
        'whole pixels': torch.randint(-2, 3, (2, 18, 5, 6), generator=g)
        .float(),
        'random': torch.randn(2, 18, 5, 6, generator=g) * 2,
    }[offsets].requires_grad_(True)
    mask = torch.rand(2, 9, 5, 6, generator=g) if modulated else \
        torch.ones(2, 9, 5, 6)
    grad_out = torch.randn(2, 4, 5, 6, generator=g)
    if modulated:
        out = modulated_deform_conv2d(x, offset, mask, weight, None, 1, 1)
    else:
        out = deform_conv2d(x, offset, weight, 1, 1)
    out.backward(grad_out)
    expected = offset_gradient_reference(x, offset.detach(), mask, weight,
                                         grad_out, 1, 1, 1)
    torch.testing.assert_close(offset.grad.double(), expected, rtol=1e-5,
                               atol=1e-5)
    if offsets == 'zero':  # the top row's taps of the first output row
        assert offset.grad.view(2, 3, 3, 2, 5, 6)[:, 0, :, :, 0].eq(0).all()
        tv_offset = offset.detach().clone().requires_grad_(True)
        tv = torchvision.ops.deform_conv2d(x, tv_offset, weight, padding=1,
                                           mask=mask)
        tv.backward(grad_out)
        assert not torch.allclose(tv_offset.grad, offset.grad)


def test_dcnv2_reads_a_larger_buffer_with_the_outputs_geometry():
    # DyHead: offsets and mask predicted on a level of 8 x 10 drive the DCN
    # of the next coarser level (4 x 5 output); mmcv reads each image's
    # first C * 4 * 5 values of the buffer in (C, H, W) order.
    from mmcv.ops import modulated_deform_conv2d
    g = torch.Generator().manual_seed(4)
    x = torch.randn(2, 4, 4, 5, generator=g, dtype=torch.float64,
                    requires_grad=True)
    weight = torch.randn(3, 4, 3, 3, generator=g, dtype=torch.float64,
                         requires_grad=True)
    predicted = torch.randn(2, 27, 8, 10, generator=g, dtype=torch.float64,
                            requires_grad=True)
    offset, mask = predicted[:, :18], predicted[:, 18:].sigmoid()
    out = modulated_deform_conv2d(x, offset, mask, weight, None, 1, 1)
    assert out.shape == (2, 3, 4, 5)
    read_offset = offset.detach().reshape(2, -1)[:, :18 * 20].reshape(
        2, 18, 4, 5)
    read_mask = mask.detach().reshape(2, -1)[:, :9 * 20].reshape(2, 9, 4, 5)
    expected = torchvision.ops.deform_conv2d(x, read_offset, weight,
                                             padding=1, mask=read_mask)
    torch.testing.assert_close(out, expected)
    grad_out = torch.randn(out.shape, generator=g, dtype=torch.float64)
    out.backward(grad_out)
    grad = predicted.grad[:, :18].reshape(2, -1)
    assert grad[:, 18 * 20:].eq(0).all()  # never read: no gradient
    expected = offset_gradient_reference(
        x.detach(), read_offset, read_mask, weight.detach(), grad_out, 1, 1,
        1)
    torch.testing.assert_close(grad[:, :18 * 20].view(2, 18, 4, 5), expected)


def test_dcnv2_gradcheck_with_a_larger_buffer():
    from mmcv.ops.modulated_deform_conv import ModulatedDeformConv2dFunction
    g = torch.Generator().manual_seed(5)
    x = torch.randn(1, 1, 2, 3, generator=g, dtype=torch.float64)
    weight = torch.randn(1, 1, 3, 3, generator=g, dtype=torch.float64)
    predicted = torch.randn(1, 27, 3, 4, generator=g, dtype=torch.float64)
    assert torch.autograd.gradcheck(
        lambda x, p, w: ModulatedDeformConv2dFunction.apply(
            x, p[:, :18] * 0.7, p[:, 18:].sigmoid(), w, None, 1, 1),
        [t.requires_grad_(True) for t in (x, predicted, weight)])


def test_a_buffer_too_small_for_the_output_is_refused():
    from mmcv.ops import deform_conv2d, modulated_deform_conv2d
    x = torch.randn(2, 4, 8, 10)
    weight = torch.randn(3, 4, 3, 3)
    small = torch.zeros(2, 18, 4, 5)
    with pytest.raises(ValueError, match=r'offset \(2, 18, 4, 5\) must be'
                       r'.*at least 18 x 8 x 10 values'):
        modulated_deform_conv2d(x, small, torch.ones(2, 9, 8, 10), weight,
                                None, 1, 1)
    # DCNv1's kernel checks the shape exactly, and so does mmdist's.
    with pytest.raises(ValueError, match='H_out = 8, W_out = 10'):
        deform_conv2d(x, torch.zeros(2, 18, 16, 20), weight, 1, 1)
