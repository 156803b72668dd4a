"""mmdist.ops.masked_conv through mmcv's MaskedConv2d, against nn.Conv2d at
the masked pixels and against the unfold/fold of mmcv's CUDA kernels
(masked_conv2d_cuda_kernel.cuh) written out as loops."""
import numpy as np
import pytest
import torch

import mmdist  # noqa: F401
from mmdist.ops import masked_conv as ours

pytestmark = [
    pytest.mark.usefixtures('mmdist_ops_in_mmcv'),
    # mmcv's wrapper calls a deprecated overload of torch.addmm.
    pytest.mark.filterwarnings('ignore:This overload of addmm'),
]

DEVICES = ['cpu', pytest.param('cuda', marks=pytest.mark.gpu)]

# (kernel, padding): odd and even kernels, the map kept, grown and shrunk.
CASES = [(3, 1), (1, 0), (5, 2), (2, 1), (4, 2), (3, 2), (2, 0), (3, 0),
         ((3, 2), (1, 0)), ((1, 4), (0, 1))]


def im2col_reference(im, rows, cols, kernel, padding):
    """mmcv's MaskedIm2colForward, one column element at a time."""
    (kernel_h, kernel_w), (pad_h, pad_w) = kernel, padding
    im = im[0].double().numpy()
    channels, height, width = im.shape
    col = np.zeros((channels * kernel_h * kernel_w, len(rows)))
    for m, (h, w) in enumerate(zip(rows.tolist(), cols.tolist())):
        for c in range(channels):
            for i in range(kernel_h):
                for j in range(kernel_w):
                    y, x = h - pad_h + i, w - pad_w + j
                    if 0 <= y < height and 0 <= x < width:
                        col[(c * kernel_h + i) * kernel_w + j, m] = im[c, y,
                                                                       x]
    return torch.from_numpy(col)


def col2im_reference(col, rows, cols, im):
    """mmcv's MaskedCol2imForward: write over the masked pixels only."""
    im = im.clone()
    for m, (h, w) in enumerate(zip(rows.tolist(), cols.tolist())):
        for c in range(col.shape[0]):
            im[0, c, h, w] = col[c, m]
    return im


def conv_reference(x, mask, weight, bias, padding):
    """The convolution at each masked pixel, written out; 0 elsewhere."""
    pad_h, pad_w = padding
    x, weight, bias = (t.double().numpy() for t in (x[0], weight, bias))
    out_channels, channels, kernel_h, kernel_w = weight.shape
    height, width = x.shape[1:]
    out = np.zeros((1, out_channels, height + 2 * pad_h - kernel_h + 1,
                    width + 2 * pad_w - kernel_w + 1))
    for h, w in zip(*np.nonzero(mask[0].numpy() > 0)):
        for o in range(out_channels):
            total = bias[o]
            for c, i, j in np.ndindex(channels, kernel_h, kernel_w):
                y, x_ = h - pad_h + i, w - pad_w + j
                if 0 <= y < height and 0 <= x_ < width:
                    total += weight[o, c, i, j] * x[c, y, x_]
            out[0, o, h, w] = total
    return torch.from_numpy(out)


def make(kernel, padding, size=(7, 9), channels=3, out_channels=4, seed=0,
         device='cpu'):
    """A MaskedConv2d, an input and a random mask on the output map."""
    from mmcv.ops import MaskedConv2d
    torch.manual_seed(seed)
    conv = MaskedConv2d(channels, out_channels, kernel,
                        padding=padding).to(device)
    x = torch.randn(1, channels, *size, device=device)
    out_size = conv._conv_forward(x, conv.weight, conv.bias).shape[2:]
    mask = torch.rand(1, *size, device=device) > 0.5
    # The mask lives on the input map; pixels the convolution drops are
    # refused (test_bad_arguments), so mask only the output's pixels.
    mask[:, out_size[0]:] = False
    mask[:, :, out_size[1]:] = False
    # Corners and edges of the output map, where the window leaves the map.
    last = [min(out_size[d], size[d]) - 1 for d in (0, 1)]
    mask[0, 0, 0] = mask[0, last[0], last[1]] = mask[0, 0, last[1]] = True
    return conv, x, mask.float()


@pytest.mark.parametrize('device', DEVICES)
@pytest.mark.parametrize('kernel,padding', CASES)
def test_matches_conv2d_at_masked_pixels(kernel, padding, device):
    conv, x, mask = make(kernel, padding, device=device)
    out = conv(x, mask)
    full = conv(x)  # no mask: mmcv falls back to nn.Conv2d
    assert out.shape == full.shape
    # The output map can be larger than the mask (padding > kernel // 2).
    masked = torch.zeros(full.shape[2:], dtype=torch.bool, device=device)
    h, w = min(full.size(2), x.size(2)), min(full.size(3), x.size(3))
    masked[:h, :w] = mask[0, :h, :w] > 0
    torch.testing.assert_close(out, full * masked, rtol=1e-5, atol=1e-5)
    assert (out[~masked.expand_as(out)] == 0).all()
    expected = conv_reference(x.cpu(), mask.cpu(), conv.weight.detach().cpu(),
                              conv.bias.detach().cpu(), conv.padding)
    torch.testing.assert_close(out.double().cpu(), expected, rtol=1e-5,
                               atol=1e-5)


@pytest.mark.parametrize('device', DEVICES)
@pytest.mark.parametrize('kernel,padding', CASES[:6])
def test_ops_follow_mmcv_kernels(kernel, padding, device):
    kernel, padding = torch.nn.modules.utils._pair(kernel), \
        torch.nn.modules.utils._pair(padding)
    g = torch.Generator().manual_seed(1)
    im = torch.randn(1, 2, 5, 6, generator=g, dtype=torch.float64)
    # Every pixel, in shuffled order: borders, corners and the middle.
    rows, cols = np.unravel_index(torch.randperm(30, generator=g).numpy(),
                                  (5, 6))
    rows, cols = torch.from_numpy(rows), torch.from_numpy(cols)
    count = len(rows)
    # Garbage in the buffers: im2col writes over all of col.
    col = torch.full((2 * kernel[0] * kernel[1], count), 7.,
                     dtype=torch.float64, device=device)
    ours.masked_im2col_forward(im.to(device), rows.to(device),
                               cols.to(device), col, *kernel, *padding)
    assert torch.equal(col.cpu(),
                       im2col_reference(im, rows, cols, kernel, padding))
    # col2im writes over the masked pixels and leaves the others alone.
    values = torch.randn(3, count - 9, generator=g, dtype=torch.float64)
    buffer = torch.full((1, 3, 5, 6), -5., dtype=torch.float64)
    out = buffer.to(device)
    ours.masked_col2im_forward(values.to(device), rows[9:].to(device),
                               cols[9:].to(device), out, 5, 6, 3)
    expected = col2im_reference(values, rows[9:], cols[9:], buffer)
    assert torch.equal(out.cpu(), expected)
    assert (out == -5).sum() == 3 * 9


def test_window_is_placed_by_padding_not_centred():
    # Hand-checked: a 2x2 window at pixel (0, 0) of [[1, 2, 3], [4, 5, 6],
    # [7, 8, 9]] starts at (-pad, -pad).
    im = torch.arange(1., 10.).view(1, 1, 3, 3)
    index = torch.zeros(1, dtype=torch.long)
    for pad, expected in ((0, [1., 2., 4., 5.]), (1, [0., 0., 0., 1.])):
        col = torch.empty(4, 1)
        ours.masked_im2col_forward(im, index, index, col, 2, 2, pad, pad)
        assert col.flatten().tolist() == expected
    # The middle pixel, 3x3 window, padding 1: the whole map.
    col = torch.empty(9, 1)
    ours.masked_im2col_forward(im, index + 1, index + 1, col, 3, 3, 1, 1)
    assert torch.equal(col.flatten(), im.flatten())


@pytest.mark.parametrize('device', DEVICES)
def test_empty_mask(device):
    conv, x, _ = make(3, 1, device=device)
    out = conv(x, torch.zeros(1, 7, 9, device=device))
    assert torch.equal(out, torch.zeros(1, 4, 7, 9, device=device))
    # Called directly with no pixels: nothing to write, no error.
    empty = torch.zeros(0, dtype=torch.long, device=device)
    col = torch.zeros(3 * 9, 0, device=device)
    ours.masked_im2col_forward(x, empty, empty, col, 3, 3, 1, 1)
    im = torch.ones(1, 4, 7, 9, device=device)
    ours.masked_col2im_forward(torch.zeros(4, 0, device=device), empty,
                               empty, im, 7, 9, 4)
    assert torch.equal(im, torch.ones_like(im))


@pytest.mark.parametrize('device', DEVICES)
def test_half_precision(device):
    conv, x, mask = make(3, 1, device=device)
    rows, cols = torch.nonzero(mask[0] > 0, as_tuple=True)
    half = x.half()
    col = torch.empty(27, len(rows), dtype=torch.float16, device=device)
    ours.masked_im2col_forward(half, rows, cols, col, 3, 3, 1, 1)
    # A copy: exact, in the buffer's dtype.
    assert torch.equal(col.cpu().double(),
                       im2col_reference(half.cpu().float(), rows.cpu(),
                                        cols.cpu(), (3, 3), (1, 1)))
    # Half columns into a float32 output (autocast's addmm) are cast.
    im = torch.zeros(1, 27, 7, 9, device=device)
    ours.masked_col2im_forward(col, rows, cols, im, 7, 9, 27)
    assert im.dtype == torch.float32
    assert torch.equal(im[0, :, rows, cols], col.float())
    expected = conv(x, mask)
    out = conv.half()(half, mask.half())
    assert out.dtype == torch.float16
    torch.testing.assert_close(out.float(), expected, rtol=1e-2, atol=1e-2)


@pytest.mark.parametrize('device', DEVICES)
def test_differentiable_under_autograd(device):
    # mmcv's Function returns None gradients; the torch ops themselves are
    # still correct under autograd.
    g = torch.Generator().manual_seed(2)
    im = torch.randn(1, 2, 4, 5, generator=g, dtype=torch.float64)
    im = im.to(device).requires_grad_(True)
    rows = torch.tensor([0, 3, 1, 2], device=device)
    cols = torch.tensor([4, 0, 2, 1], device=device)

    def unfold(im):
        col = im.new_zeros(2 * 6, 4)
        ours.masked_im2col_forward(im, rows, cols, col, 2, 3, 1, 1)
        return col

    def fold(col):
        im = col.new_zeros(1, 3, 4, 5)
        ours.masked_col2im_forward(col, rows, cols, im, 4, 5, 3)
        return im

    assert torch.autograd.gradcheck(unfold, (im, ))
    col = torch.randn(3, 4, generator=g, dtype=torch.float64)
    assert torch.autograd.gradcheck(fold, (col.to(device).requires_grad_(), ))


def test_bad_arguments():
    from mmcv.ops import MaskedConv2d, masked_conv2d
    conv, x, mask = make(3, 1)
    rows, cols = torch.nonzero(mask[0] > 0, as_tuple=True)
    col = torch.zeros(27, len(rows))
    with pytest.raises(ValueError, match=r'must be \(1, C, H, W\)'):
        ours.masked_im2col_forward(x.expand(2, -1, -1, -1), rows, cols, col,
                                   3, 3, 1, 1)
    with pytest.raises(ValueError, match=r'must be \(C \* kernel_h'):
        ours.masked_im2col_forward(x, rows, cols, col[:, 1:], 3, 3, 1, 1)
    with pytest.raises(ValueError, match='must both be'):
        ours.masked_im2col_forward(x, rows, cols[1:], col, 3, 3, 1, 1)
    with pytest.raises(ValueError, match='integer tensor'):
        ours.masked_im2col_forward(x, rows.float(), cols, col, 3, 3, 1, 1)
    with pytest.raises(ValueError, match=r'must be \(1, channels'):
        ours.masked_col2im_forward(col[:4], rows, cols,
                                   torch.zeros(1, 4, 9, 7), 7, 9, 4)
    with pytest.raises(ValueError, match=r'must be \(channels, n\)'):
        ours.masked_col2im_forward(col[:3], rows, cols,
                                   torch.zeros(1, 4, 7, 9), 7, 9, 4)
    # A 2x2 kernel without padding drops the last row and column; mmcv's
    # kernel would write a mask there into the wrong pixel.
    shrink = MaskedConv2d(3, 4, 2)
    edge = torch.zeros(1, 7, 9)
    edge[0, 6, 3] = 1
    with pytest.raises(ValueError, match='must lie in the 6x8 output'):
        shrink(x, edge)
    # mmcv's wrapper refuses strides other than 1 before reaching the ops.
    with pytest.raises(ValueError, match='Stride'):
        masked_conv2d(x, mask, conv.weight, conv.bias, 1, 2)


@pytest.mark.parametrize('head_type', ['GuidedAnchorHead', 'GARetinaHead'])
def test_guided_anchoring_heads(head_type):
    # At test time the heads convolve only where the location branch fires;
    # while training they run the same convolutions unmasked.
    import mmdet.models  # noqa: F401  registers the heads
    from mmdet.registry import MODELS
    from mmengine.registry import DefaultScope
    cfg = dict(type=head_type, num_classes=3, in_channels=8,
               feat_channels=8, loc_filter_thr=0.5)
    if head_type == 'GARetinaHead':
        cfg['stacked_convs'] = 1
    torch.manual_seed(3)
    # Default torch init: GuidedAnchorHead's init_cfg has a typo
    # ('lbias_prob') that mmengine refuses.
    # In mmdet's scope: an earlier test may have left another default one.
    with DefaultScope.overwrite_default_scope('mmdet'):
        head = MODELS.build(cfg)
    # Spread the location scores so that about half the pixels pass.
    torch.nn.init.normal_(head.conv_loc.weight, std=0.5)
    torch.nn.init.zeros_(head.conv_loc.bias)
    x = torch.randn(1, 8, 10, 12)
    with torch.no_grad():
        cls, reg, _, loc = head.eval().forward_single(x)
        full_cls, full_reg, _, _ = head.train().forward_single(x)
    mask = (loc.sigmoid() >= 0.5).float()
    assert 0 < mask.sum() < mask.numel()
    torch.testing.assert_close(cls, full_cls * mask)
    torch.testing.assert_close(reg, full_reg * mask)
