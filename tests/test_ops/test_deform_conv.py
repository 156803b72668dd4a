"""mmdist.ops.deform_conv through mmcv's own DCNv1/DCNv2 wrappers, against
torchvision's deform_conv2d with autograd and, for zero offsets, against
F.conv2d."""

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
