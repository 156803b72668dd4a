"""mmdist.ops.carafe through mmcv's CARAFE, CARAFENaive and CARAFEPack,
against the formula of mmcv's CUDA kernels (carafe_cuda_kernel.cuh,
carafe_naive_cuda_kernel.cuh) written out as a loop, and gradcheck."""
import importlib
import itertools

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch.autograd import gradcheck

import mmdist  # noqa: F401
from mmdist.ops import carafe as ops

pytestmark = pytest.mark.usefixtures('mmdist_ops_in_mmcv')

DEVICES = ['cpu', pytest.param('cuda', marks=pytest.mark.gpu)]
OPS = ['carafe', 'carafe_naive']

# (kernel_size, group_size, scale_factor, channels, height, width)
CASES = [
    (1, 1, 2, 2, 2, 3),
    (3, 2, 2, 4, 3, 5),
    (5, 4, 2, 8, 3, 4),  # mmcv's own test's k and G; kernel wider than map
    (3, 1, 3, 2, 4, 2),
    (5, 1, 1, 3, 4, 6),
]


def reference(feat, masks, k, groups, s, top):
    """Output and gradients (w.r.t. features and masks, of
    ``<output, top>``) by a loop over every output element and tap."""
    feat, masks, top = (t.detach().cpu().double().numpy()
                        for t in (feat, masks, top))
    n, c, h, w = feat.shape
    r = (k - 1) // 2
    out = np.zeros((n, c, h * s, w * s))
    grad_feat, grad_masks = np.zeros_like(feat), np.zeros_like(masks)
    for b, ch, p, q in itertools.product(range(n), range(c), range(h * s),
                                         range(w * s)):
        g = ch // (c // groups)
        for ky, kx in itertools.product(range(k), range(k)):
            y, x = p // s + ky - r, q // s + kx - r
            if not (0 <= y < h and 0 <= x < w):
                continue  # zero padding
            m = (g * k + ky) * k + kx
            out[b, ch, p, q] += feat[b, ch, y, x] * masks[b, m, p, q]
            grad_feat[b, ch, y, x] += masks[b, m, p, q] * top[b, ch, p, q]
            grad_masks[b, m, p, q] += feat[b, ch, y, x] * top[b, ch, p, q]
    return [torch.from_numpy(a) for a in (out, grad_feat, grad_masks)]


class NaiveAnyDevice(torch.autograd.Function):
    """mmcv's CARAFENaiveFunction, whose backward asserts CUDA: the same
    ``_ext`` calls with the same zeroed buffers, on any device."""

    @staticmethod
    def forward(ctx, features, masks, k, groups, s):
        ext = importlib.import_module('mmcv.ops.carafe').ext_module
        ctx.args = dict(kernel_size=k, group_size=groups, scale_factor=s)
        n, c, h, w = features.shape
        output = features.new_zeros((n, c, h * s, w * s))
        ext.carafe_naive_forward(features, masks, output, **ctx.args)
        ctx.save_for_backward(features, masks)
        return output

    @staticmethod
    def backward(ctx, grad_output):
        ext = importlib.import_module('mmcv.ops.carafe').ext_module
        features, masks = ctx.saved_tensors
        grad_input = torch.zeros_like(features)
        grad_masks = torch.zeros_like(masks)
        ext.carafe_naive_backward(grad_output.contiguous(), features, masks,
                                  grad_input, grad_masks, **ctx.args)
        return grad_input, grad_masks, None, None, None


def apply(op, features, masks, k, groups, s):
    from mmcv.ops.carafe import carafe, carafe_naive
    if op == 'carafe':
        return carafe(features, masks, k, groups, s)
    if features.is_cuda:
        return carafe_naive(features, masks, k, groups, s)
    return NaiveAnyDevice.apply(features, masks, k, groups, s)


def make(case, batch=2, dtype=torch.float64, device='cpu', seed=0):
    k, groups, s, c, h, w = case
    g = torch.Generator().manual_seed(seed)
    feat = torch.randn(batch, c, h, w, generator=g, dtype=torch.float64)
    # Signed, unnormalised weights: nothing may rely on softmaxed masks.
    masks = torch.randn(batch, groups * k * k, h * s, w * s, generator=g,
                        dtype=torch.float64)
    top = torch.randn(batch, c, h * s, w * s, generator=g,
                      dtype=torch.float64)
    return [t.to(device, dtype).requires_grad_(i < 2)
            for i, t in enumerate((feat, masks, top))]


@pytest.mark.parametrize('device', DEVICES)
@pytest.mark.parametrize('op', OPS)
@pytest.mark.parametrize('case', CASES)
def test_output_and_gradients_match_loop(case, op, device):
    k, groups, s = case[:3]
    feat, masks, top = make(case, device=device)
    out = apply(op, feat, masks, k, groups, s)
    grads = torch.autograd.grad(out, [feat, masks], top)
    expected = reference(feat, masks, k, groups, s, top)
    for actual, wanted in zip([out] + list(grads), expected):
        torch.testing.assert_close(actual.detach().cpu(), wanted)


@pytest.mark.parametrize('device', DEVICES)
@pytest.mark.parametrize('op', OPS)
@pytest.mark.parametrize(
    'case', [(3, 2, 2, 4, 2, 3), (5, 1, 1, 2, 3, 2), (1, 1, 3, 1, 2, 1)])
def test_gradcheck_float64(case, op, device):
    k, groups, s = case[:3]
    feat, masks, _ = make(case, batch=1, device=device)
    assert gradcheck(lambda f, m: apply(op, f, m, k, groups, s),
                     (feat, masks), fast_mode=True)


@pytest.mark.parametrize('device', DEVICES)
@pytest.mark.parametrize('op', OPS)
def test_full_gradcheck_tiny(op, device):
    feat, masks, _ = make((3, 2, 2, 2, 2, 2), batch=1, device=device)
    assert gradcheck(lambda f, m: apply(op, f, m, 3, 2, 2), (feat, masks))


@pytest.mark.parametrize('device', DEVICES)
@pytest.mark.parametrize('op', OPS)
@pytest.mark.parametrize('s', [1, 2, 3])
def test_kernel_one_is_nearest_upsampling(s, op, device):
    # Output pixel (p, q) reads input pixel (p // s, q // s): nearest.
    feat = torch.randn(2, 3, 3, 4, device=device)
    masks = torch.ones(2, 1, 3 * s, 4 * s, device=device)
    out = apply(op, feat, masks, 1, 1, s)
    torch.testing.assert_close(
        out, F.interpolate(feat, scale_factor=s, mode='nearest'))


@pytest.mark.parametrize('device', DEVICES)
@pytest.mark.parametrize('op', OPS)
def test_zero_padding_by_hand(op, device):
    # Ones averaged over 3x3 taps: a corner sees 4 pixels, an edge 6.
    feat = torch.ones(1, 1, 3, 3, device=device)
    masks = torch.full((1, 9, 3, 3), 1 / 9, device=device)
    expected = torch.tensor([[4., 6., 4.], [6., 9., 6.], [4., 6., 4.]]) / 9
    out = apply(op, feat, masks, 3, 1, 1)
    torch.testing.assert_close(out[0, 0].cpu(), expected)


@pytest.mark.parametrize('device', DEVICES)
@pytest.mark.parametrize('op', OPS)
def test_groups_use_their_own_masks(op, device):
    # Group 0 weighs the tap left of centre, group 1 the one right of it.
    feat = torch.arange(8.).view(1, 2, 1, 4).to(device)
    masks = torch.zeros(1, 18, 1, 4, device=device)
    masks[:, 3] = 1  # group 0, tap (1, 0)
    masks[:, 9 + 5] = 1  # group 1, tap (1, 2)
    out = apply(op, feat, masks, 3, 2, 1)
    expected = torch.tensor([[0., 0., 1., 2.], [5., 6., 7., 0.]])
    torch.testing.assert_close(out[0, :, 0].cpu(), expected)


@pytest.mark.parametrize('device', DEVICES)
def test_buffers_written_over_or_added_to(device):
    # mmcv: forwards write over output, carafe_backward writes over its
    # gradients, carafe_naive_backward adds to them (atomicAdd).
    k, groups, s = 3, 2, 2
    feat, masks, top = (t.detach()
                        for t in make((k, groups, s, 4, 3, 2),
                                      device=device))
    _, grad_feat, grad_masks = reference(feat, masks, k, groups, s, top)
    args = dict(kernel_size=k, group_size=groups, scale_factor=s)
    for forward in ('carafe', 'carafe_naive'):
        output = torch.full_like(top, 7.)
        if forward == 'carafe':
            rfeatures = torch.zeros_like(feat)
            ops.carafe_forward(feat, masks, rfeatures, torch.zeros_like(top),
                               torch.zeros_like(masks), output, **args)
            # The NHWC copy that mmcv's wrapper hands to the backward.
            assert torch.equal(rfeatures, feat.permute(0, 2, 3, 1))
        else:
            ops.carafe_naive_forward(feat, masks, output, **args)
        expected = apply(forward, feat, masks, k, groups, s)
        torch.testing.assert_close(output, expected)

    bottom_grad, mask_grad = torch.ones_like(feat), torch.ones_like(masks)
    ops.carafe_naive_backward(top, feat, masks, bottom_grad, mask_grad,
                              **args)
    torch.testing.assert_close(bottom_grad.cpu(), grad_feat + 1)
    torch.testing.assert_close(mask_grad.cpu(), grad_masks + 1)

    bottom_grad, mask_grad = torch.ones_like(feat), torch.ones_like(masks)
    scratch = [torch.zeros_like(t) for t in (top, top, feat, masks)]
    ops.carafe_backward(top, rfeatures, masks, *scratch, bottom_grad,
                        mask_grad, **args)
    torch.testing.assert_close(bottom_grad.cpu(), grad_feat)
    torch.testing.assert_close(mask_grad.cpu(), grad_masks)


@pytest.mark.parametrize('device', DEVICES)
@pytest.mark.parametrize('op', OPS)
@pytest.mark.parametrize('dtype', [torch.float16, torch.bfloat16])
def test_half_precision(dtype, op, device):
    case = (5, 4, 2, 8, 3, 4)
    feat, masks, top = make(case, dtype=dtype, device=device)
    out = apply(op, feat, masks, *case[:3])
    grads = torch.autograd.grad(out, [feat, masks], top)
    expected = reference(feat, masks, *case[:3], top)
    for actual, wanted in zip([out] + list(grads), expected):
        assert actual.dtype == dtype
        # Computed in float32: only the inputs' and result's rounding.
        torch.testing.assert_close(actual.detach().cpu().double(), wanted,
                                   rtol=2e-2, atol=2e-2)


@pytest.mark.parametrize('device', DEVICES)
@pytest.mark.parametrize('op', OPS)
def test_empty_batch(op, device):
    feat, masks, top = make((3, 1, 2, 2, 3, 4), batch=0, device=device)
    out = apply(op, feat, masks, 3, 1, 2)
    assert out.shape == (0, 2, 6, 8)
    grads = torch.autograd.grad(out, [feat, masks], top)
    assert [g.shape for g in grads] == [feat.shape, masks.shape]


def _forward_args(n=1, c=4, h=3, w=5, k=3, groups=2, s=2, mask_c=None,
                  mask_hw=None):
    feat = torch.zeros(n, c, h, w)
    masks = torch.zeros(n, groups * k * k if mask_c is None else mask_c,
                        *(mask_hw or (h * s, w * s)))
    output = torch.zeros(n, c, h * s, w * s)
    return feat, masks, output, dict(kernel_size=k, group_size=groups,
                                     scale_factor=s)


@pytest.mark.parametrize('kwargs, message', [
    (dict(groups=3), 'group_size=3 must divide the 4 feature channels'),
    (dict(k=2, groups=1, mask_c=4), 'kernel_size must be odd'),
    (dict(mask_c=9), r'masks \(1, 9, 6, 10\) must be'),
    (dict(mask_hw=(6, 9)), r'masks \(1, 18, 6, 9\) must be'),
])
@pytest.mark.parametrize('op', OPS)
def test_bad_arguments_raise(op, kwargs, message):
    # mmcv's wrappers assert these; its kernels would misread them.
    feat, masks, output, args = _forward_args(**kwargs)
    with pytest.raises(ValueError, match=message):
        if op == 'carafe':
            ops.carafe_forward(feat, masks, torch.zeros_like(feat),
                               torch.zeros_like(output),
                               torch.zeros_like(masks), output, **args)
        else:
            ops.carafe_naive_forward(feat, masks, output, **args)


def test_bad_buffers_raise():
    feat, masks, output, args = _forward_args()
    with pytest.raises(ValueError, match=r'output \(1, 4, 6, 9\) must be'):
        ops.carafe_naive_forward(feat, masks, output[..., :9], **args)
    with pytest.raises(ValueError, match='scale_factor must be >= 1'):
        ops.carafe_naive_forward(feat, masks, output,
                                 **dict(args, scale_factor=0))
    # carafe_backward reads the NHWC features that carafe_forward left.
    grads = torch.zeros_like(feat), torch.zeros_like(masks)
    scratch = [torch.zeros_like(t) for t in (output, output, feat, masks)]
    with pytest.raises(ValueError, match=r'rfeatures .* \(1, 3, 5, 4\)'):
        ops.carafe_backward(output, feat, masks, *scratch, *grads, **args)


@pytest.mark.parametrize('device', DEVICES)
@pytest.mark.parametrize('up_group', [1, 2])
def test_carafe_pack_module(up_group, device):
    from mmcv.ops import CARAFEPack
    torch.manual_seed(0)
    pack = CARAFEPack(4, 2, up_kernel=3, up_group=up_group,
                      compressed_channels=8).to(device)
    torch.nn.init.normal_(pack.content_encoder.weight, std=0.5)  # not flat
    x = torch.randn(2, 4, 3, 5, device=device, requires_grad=True)
    out = pack(x)
    assert out.shape == (2, 4, 6, 10)
    with torch.no_grad():
        masks = pack.kernel_normalizer(
            pack.content_encoder(pack.channel_compressor(x)))
    expected, _, _ = reference(x, masks, 3, up_group, 2, torch.zeros_like(out))
    torch.testing.assert_close(out.detach().cpu().double(), expected,
                               rtol=1e-5, atol=1e-5)
    out.square().sum().backward()
    for tensor in (x, pack.channel_compressor.weight,
                   pack.content_encoder.weight):
        assert tensor.grad is not None and tensor.grad.abs().sum() > 0
