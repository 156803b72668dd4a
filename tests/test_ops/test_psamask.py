"""mmdist.ops.psamask through mmcv's PSAMask, against PSANet's collect and
distribute written out as a loop from mmcv's kernels (cpu/psamask.cpp,
cuda/psamask_cuda_kernel.cuh)."""
import numpy as np
import pytest
import torch

import mmdist  # noqa: F401
from mmdist.ops import psamask as ours

pytestmark = pytest.mark.usefixtures('mmdist_ops_in_mmcv')

DEVICES = ['cpu', pytest.param('cuda', marks=pytest.mark.gpu)]
COLLECT, DISTRIBUTE = 0, 1

# (H, W, (h_mask, w_mask)): odd and even windows, smaller and larger than
# the map, PSANet's (2H - 1) x (2W - 1), and a one-row window.
CASES = [
    (5, 6, (3, 3)),
    (5, 6, (4, 2)),
    (4, 5, (7, 9)),  # PSANet: 2H - 1 x 2W - 1, the whole map from anywhere
    (3, 4, (6, 8)),  # even and larger than the map
    (4, 3, (1, 5)),
]


def spread_reference(windows, psa_type, mask, half=None, out=None):
    """The forward, one window position at a time: ``windows`` (N, hm * wm,
    H, W) -> (N, H * W, H, W), written into ``out`` (zeros by default)."""
    n_batch, _, height, width = windows.shape
    h_mask, w_mask = mask
    half_h, half_w = half or ((h_mask - 1) // 2, (w_mask - 1) // 2)
    windows = np.asarray(windows)
    if out is None:
        out = np.zeros((n_batch, height * width, height, width),
                       windows.dtype)
    for n, h, w in np.ndindex(n_batch, height, width):
        for hidx, widx in np.ndindex(h_mask, w_mask):
            hh, ww = h + hidx - half_h, w + widx - half_w
            if not (0 <= hh < height and 0 <= ww < width):
                continue
            value = windows[n, hidx * w_mask + widx, h, w]
            if psa_type == COLLECT:
                out[n, hh * width + ww, h, w] = value
            else:
                out[n, h * width + w, hh, ww] = value
    return out


def gather_reference(grad_out, psa_type, mask, half=None, grad_in=None):
    """The backward, one window position at a time: the gradient of each
    window position on the map, read back from ``grad_out``."""
    n_batch, _, height, width = grad_out.shape
    h_mask, w_mask = mask
    half_h, half_w = half or ((h_mask - 1) // 2, (w_mask - 1) // 2)
    grad_out = np.asarray(grad_out)
    if grad_in is None:
        grad_in = np.zeros((n_batch, h_mask * w_mask, height, width),
                           grad_out.dtype)
    for n, h, w in np.ndindex(n_batch, height, width):
        for hidx, widx in np.ndindex(h_mask, w_mask):
            hh, ww = h + hidx - half_h, w + widx - half_w
            if not (0 <= hh < height and 0 <= ww < width):
                continue
            if psa_type == COLLECT:
                value = grad_out[n, hh * width + ww, h, w]
            else:
                value = grad_out[n, h * width + w, hh, ww]
            grad_in[n, hidx * w_mask + widx, h, w] = value
    return grad_in


def windows_for(height, width, mask, batch=2, seed=0, dtype=torch.float64,
                device='cpu'):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(batch, mask[0] * mask[1], height, width, generator=g,
                       dtype=dtype).to(device)


@pytest.mark.parametrize('device', DEVICES)
@pytest.mark.parametrize('psa_type', ['collect', 'distribute'])
@pytest.mark.parametrize('height,width,mask', CASES)
def test_values_and_gradient_follow_mmcv_kernel(height, width, mask,
                                                psa_type, device):
    from mmcv.ops import PSAMask
    kind = COLLECT if psa_type == 'collect' else DISTRIBUTE
    windows = windows_for(height, width, mask, device=device)
    windows.requires_grad_(True)
    out = PSAMask(psa_type, mask)(windows)
    assert out.shape == (2, height * width, height, width)
    expected = spread_reference(windows.detach().cpu(), kind, mask)
    assert torch.equal(out.detach().cpu(), torch.from_numpy(expected))
    upstream = torch.randn(out.shape, dtype=out.dtype, generator=torch
                           .Generator().manual_seed(1)).to(device)
    out.backward(upstream)
    assert torch.equal(
        windows.grad.cpu(),
        torch.from_numpy(gather_reference(upstream.cpu(), kind, mask)))


@pytest.mark.parametrize('psa_type', ['collect', 'distribute'])
@pytest.mark.parametrize('height,width,mask', [(3, 4, (3, 3)),
                                               (3, 4, (4, 2)),
                                               (3, 3, (5, 5))])
def test_gradcheck_float64(height, width, mask, psa_type):
    from mmcv.ops import PSAMask
    windows = windows_for(height, width, mask, batch=1).requires_grad_(True)
    assert torch.autograd.gradcheck(PSAMask(psa_type, mask), (windows, ),
                                    fast_mode=True)


def test_psanet_mask_covers_the_map_and_distribute_transposes_collect():
    # Mask (2H - 1) x (2W - 1), as PSANet uses it: every pixel pair gets
    # exactly one window value, and distribute is collect with the two map
    # positions swapped.
    from mmcv.ops import PSAMask
    height, width = 5, 7
    mask = (2 * height - 1, 2 * width - 1)
    ones = torch.ones(1, mask[0] * mask[1], height, width)
    assert torch.equal(PSAMask('collect', mask)(ones),
                       torch.ones(1, height * width, height, width))
    windows = windows_for(height, width, mask)
    collect = PSAMask('collect', mask)(windows).flatten(2)
    distribute = PSAMask('distribute', mask)(windows).flatten(2)
    assert torch.equal(distribute, collect.transpose(1, 2))
    # A small window leaves far pixel pairs at the wrapper's zero.
    small = PSAMask('collect', (3, 3))(torch.ones(1, 9, height, width))
    assert small.count_nonzero() < small.numel()


def test_psa_head_like_use_backpropagates():
    # mmseg's PSAHead: softmax over the spread mask, then a bmm with the
    # features; the gradient of the windows must match the loop's.
    from mmcv.ops import PSAMask
    height, width, channels = 4, 5, 3
    mask = (2 * height - 1, 2 * width - 1)
    windows = windows_for(height, width, mask, batch=1).requires_grad_(True)
    feats = windows_for(height, width, (channels, 1), batch=1, seed=3)
    attention = torch.softmax(PSAMask('distribute', mask)(windows), dim=1)
    out = torch.bmm(feats.view(1, channels, -1),
                    attention.view(1, height * width, -1))
    out.sum().backward()
    spread = torch.from_numpy(
        spread_reference(windows.detach(), DISTRIBUTE, mask)).requires_grad_(
            True)
    reference = torch.bmm(feats.view(1, channels, -1),
                          torch.softmax(spread, dim=1).view(1, height * width,
                                                            -1))
    torch.testing.assert_close(out, reference)
    reference.sum().backward()
    torch.testing.assert_close(
        windows.grad,
        torch.from_numpy(gather_reference(spread.grad, DISTRIBUTE, mask)))


@pytest.mark.parametrize('device', DEVICES)
@pytest.mark.parametrize('kind', [COLLECT, DISTRIBUTE])
def test_buffers_written_over_only_where_windows_land(kind, device):
    # Called directly, as mmcv's wrapper does, but with non-zero buffers:
    # the kernel assigns valid positions and leaves the rest alone; any
    # window offset is taken as given.
    height, width, mask, half = 4, 5, (3, 4), (0, 2)
    windows = windows_for(height, width, mask, device=device)
    output = torch.full((2, height * width, height, width), 7.,
                        dtype=torch.float64, device=device)
    args = dict(psa_type=kind, num_=2, h_feature=height, w_feature=width,
                h_mask=mask[0], w_mask=mask[1], half_h_mask=half[0],
                half_w_mask=half[1])
    ours.psamask_forward(windows, output, **args)
    expected = spread_reference(windows.cpu(), kind, mask, half,
                                out=np.full(output.shape, 7.))
    assert torch.equal(output.cpu(), torch.from_numpy(expected))
    assert (output == 7).any()
    grad_in = torch.full(windows.shape, 7., dtype=torch.float64,
                         device=device)
    ours.psamask_backward(output, grad_in, **args)
    expected = gather_reference(output.cpu(), kind, mask, half,
                                grad_in=np.full(windows.shape, 7.))
    assert torch.equal(grad_in.cpu(), torch.from_numpy(expected))
    assert (grad_in == 7).any()


@pytest.mark.parametrize('device', DEVICES)
def test_non_contiguous_input_and_half(device):
    from mmcv.ops import PSAMask
    height, width, mask = 5, 4, (3, 5)
    windows = windows_for(height, width, mask, dtype=torch.float32,
                          device=device)
    expected = PSAMask('collect', mask)(windows)
    strided = windows.transpose(2, 3).contiguous().transpose(2, 3)
    assert not strided.is_contiguous()
    assert torch.equal(PSAMask('collect', mask)(strided), expected)
    # A copy: exact in half precision too.
    half = PSAMask('collect', mask)(windows.half())
    assert half.dtype == torch.float16
    assert torch.equal(half, expected.half())


def test_empty_batch_and_map():
    from mmcv.ops import PSAMask
    windows = torch.zeros(0, 9, 4, 4, requires_grad=True)
    out = PSAMask('distribute', (3, 3))(windows)
    assert out.shape == (0, 16, 4, 4)
    out.sum().backward()
    assert windows.grad.shape == windows.shape
    empty_map = PSAMask('collect', (3, 3))(torch.zeros(2, 9, 0, 3))
    assert empty_map.shape == (2, 0, 0, 3)


def test_bad_arguments_raise():
    windows = torch.zeros(1, 9, 4, 5)
    output = torch.zeros(1, 20, 4, 5)
    args = dict(num_=1, h_feature=4, w_feature=5, h_mask=3, w_mask=3,
                half_h_mask=1, half_w_mask=1)
    with pytest.raises(ValueError, match='psa_type must be 0'):
        ours.psamask_forward(windows, output, psa_type=2, **args)
    with pytest.raises(ValueError, match=r'input \(1, 8, 4, 5\) must be'):
        ours.psamask_forward(windows[:, :8], output, psa_type=0, **args)
    with pytest.raises(ValueError, match=r'output \(1, 16, 4, 5\) must be'):
        ours.psamask_forward(windows, output[:, :16], psa_type=0, **args)
    with pytest.raises(ValueError, match='must share dtype'):
        ours.psamask_forward(windows, output.double(), psa_type=1, **args)
    with pytest.raises(ValueError, match=r'grad_input \(1, 9, 4, 4\)'):
        ours.psamask_backward(output, windows[..., :4], psa_type=1, **args)
    with pytest.raises(ValueError, match='must not be negative'):
        ours.psamask_backward(output, windows, psa_type=1,
                              **dict(args, num_=-1))
