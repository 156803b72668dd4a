"""mmdist's stand-ins, called through mmcv's own Python ops, against what
mmcv 2.1.0's compiled CPU kernels computed on the same seeded inputs
(recorded once by record_mmcv_reference.py into data/mmcv_2.1.0_cpu.pt).

In an environment with a compiled mmcv, mmdist's ops are put into mmcv's
wrappers for these tests (conftest.py), so they test mmdist there too. On a
GPU (``-m gpu``) the inputs go to CUDA.
"""
import os.path as osp

import pytest
import torch

import mmdist  # noqa: F401  (stand-in and routing in place)

DATA = osp.join(osp.dirname(__file__), 'data', 'mmcv_2.1.0_cpu.pt')
DEVICES = ['cpu', pytest.param('cuda', marks=pytest.mark.gpu)]
pytestmark = pytest.mark.usefixtures('mmdist_ops_in_mmcv')


@pytest.fixture(scope='module')
def reference():
    return torch.load(DATA, weights_only=True)


def grads_of(fn, inputs, grad_out):
    """``fn(*inputs)`` and the gradient of ``<fn, grad_out>`` w.r.t. each
    input, all on the inputs' device."""
    leaves = [t.clone().requires_grad_(True) for t in inputs]
    out = fn(*leaves)
    out.backward(grad_out)
    return out.detach(), [t.grad for t in leaves]


def close(actual, expected, atol):
    torch.testing.assert_close(actual.cpu(), expected, rtol=0, atol=atol)


def test_the_recording_came_from_compiled_mmcv(reference):
    meta = reference['meta']
    assert meta['mmcv'] == '2.1.0'
    assert not meta['compiler'].startswith('none'), meta  # not a stand-in
    counts = {key: len(value) for key, value in reference.items()
              if key != 'meta'}
    assert counts == dict(nms=22, batched_nms=2, roi_align=4, deform_conv=8,
                          deform_conv_border=4, dyhead_dcn=2, psamask=8,
                          softnms=24, nms_match=9, bbox_overlaps=8)


@pytest.mark.parametrize('device', DEVICES)
def test_nms_keeps_the_same_boxes(reference, device):
    from mmcv.ops import nms
    checked = 0
    for case in reference['nms']:
        scores = case['scores']
        if device != 'cpu' and len(scores.unique()) < len(scores):
            continue  # ties: another device's sort may order them otherwise
        dets, keep = nms(case['boxes'].to(device), scores.to(device),
                         case['iou'], offset=case['offset'])
        assert torch.equal(keep.cpu(), case['keep']), case['iou']
        assert torch.equal(dets[:, 4].cpu(), scores[case['keep']])
        checked += 1
    # ties (18 clustered cases and 8 + 8 equal boxes) and the IoU edge
    assert checked == (22 if device == 'cpu' else 3)


def test_nms_threshold_edge_in_the_recording(reference):
    # The last three cases put one IoU exactly at the threshold (kept: only
    # IoU > threshold suppresses) and one a hair above it (dropped).
    for case in reference['nms'][-3:]:
        assert case['keep'].tolist() == [0, 1, 2]


@pytest.mark.parametrize('device', DEVICES)
def test_batched_nms(reference, device):
    from mmcv.ops import batched_nms
    for case in reference['batched_nms']:
        if device != 'cpu':
            continue  # scores with ties, as above; covered on CPU
        cfg = dict(type='nms', iou_threshold=0.5, split_thr=case['split_thr'])
        dets, keep = batched_nms(case['boxes'], case['scores'], case['idxs'],
                                 cfg)
        assert torch.equal(keep, case['keep'])
        assert torch.equal(dets, case['dets'])


@pytest.mark.parametrize('device', DEVICES)
def test_roi_align_values_and_gradients(reference, device):
    from mmcv.ops import roi_align
    for case in reference['roi_align']:
        out, (grad, ) = grads_of(
            lambda x: roi_align(x, case['rois'].to(device), (7, 7), 0.5,
                                case['sampling_ratio'], 'avg',
                                case['aligned']),
            [case['input'].to(device)], case['grad_out'].to(device))
        assert case['output'].abs().sum() > 0
        # 3e-5 across devices: fused multiply-adds and atomic-add order.
        atol = 1e-6 if device == 'cpu' else 3e-5
        close(out, case['output'], atol)
        close(grad, case['grad_input'], atol)


@pytest.mark.parametrize('device', DEVICES)
def test_deform_conv_values_and_gradients(reference, device):
    from mmcv.ops import deform_conv2d, modulated_deform_conv2d
    for case in reference['deform_conv']:
        conf = (case['stride'], case['padding'], case['dilation'],
                case['groups'], case['deform_groups'])
        if case['kind'] == 'v1':
            inputs = [case['input'], case['offset'], case['weight']]
            fn = lambda x, o, w: deform_conv2d(x, o, w, *conf)  # noqa: E731
        else:
            inputs = [case['input'], case['offset'], case['mask'],
                      case['weight'], case['bias']]
            fn = lambda *a: modulated_deform_conv2d(*a, *conf)  # noqa: E731
        out, grads = grads_of(fn, [t.to(device) for t in inputs],
                              case['grad_out'].to(device))
        close(out, case['output'], 2e-5)
        for ours, theirs in zip(grads, case['grads']):
            scale = max(1.0, float(theirs.abs().max()))
            close(ours, theirs, 2e-5 * scale)


def assert_grads_close(grads, expected, rel=2e-5):
    for ours, theirs in zip(grads, expected):
        close(ours, theirs, rel * max(1.0, float(theirs.abs().max())))


@pytest.mark.parametrize('device', DEVICES)
def test_deform_conv_at_the_border(reference, device):
    # Zero offsets put border taps exactly on h == -1 or w == -1, where
    # mmcv's offset gradient is zero (torchvision's is not).
    from mmcv.ops import deform_conv2d, modulated_deform_conv2d
    for case in reference['deform_conv_border']:
        if case['kind'] == 'v1':
            fn = lambda x, o, w: deform_conv2d(x, o, w, 1, 1)  # noqa: E731
        else:
            fn = lambda *a: modulated_deform_conv2d(*a, 1, 1)  # noqa: E731
        out, grads = grads_of(fn, [t.to(device) for t in case['inputs']],
                              case['grad_out'].to(device))
        close(out, case['output'], 2e-5)
        assert_grads_close(grads, case['grads'])
        if case['offsets'] == 'zero':  # the test can tell the two apart
            top_row_taps = case['grads'][1].view(2, 3, 3, 2, 7, 8)[:, 0]
            assert top_row_taps[..., 0, :].eq(0).all()


@pytest.mark.parametrize('device', DEVICES)
def test_dyhead_dcn_reads_the_level_above_as_mmcv(reference, device):
    from mmcv.ops import modulated_deform_conv2d
    for case in reference['dyhead_dcn']:
        out, grads = grads_of(
            lambda x, p, w, b: modulated_deform_conv2d(
                x, p[:, :18], p[:, 18:].sigmoid(), w, b, 1, 1),
            [t.to(device) for t in case['inputs']],
            case['grad_out'].to(device))
        close(out, case['output'], 2e-5)
        assert_grads_close(grads, case['grads'])
        # What the kernel never read has no gradient.
        read = 18 * out.shape[2] * out.shape[3]
        assert case['grads'][1][:, :18].flatten(1)[:, read:].eq(0).all()


@pytest.mark.parametrize('device', DEVICES)
def test_psamask(reference, device):
    from mmcv.ops import PSAMask
    for case in reference['psamask']:
        out, (grad, ) = grads_of(
            PSAMask(case['psa_type'], case['mask_size']),
            [case['input'].to(device)], case['grad_out'].to(device))
        assert torch.equal(out.cpu(), case['output'])  # a copy: exact
        assert torch.equal(grad.cpu(), case['grad_input'])


def test_softnms_keeps_the_same_boxes_and_scores(reference):
    # mmcv runs soft-NMS on CPU whatever the device of its inputs.
    from mmcv.ops import soft_nms
    for case in reference['softnms']:
        dets, inds = soft_nms(case['boxes'], case['scores'], case['iou'],
                              case['sigma'], case['min_score'],
                              case['method'], case['offset'])
        assert torch.equal(inds, case['inds']), case['method']
        assert torch.equal(dets, case['dets']), case['method']
    kept = [len(case['inds']) for case in reference['softnms']]
    assert min(kept) < 300  # some cases drop boxes below min_score


def test_nms_match_gives_the_same_groups(reference):
    from mmcv.ops import nms_match
    for case in reference['nms_match']:
        groups = nms_match(case['dets'], case['iou'])
        assert [g.tolist() for g in groups] == case['groups'], case['iou']


@pytest.mark.parametrize('device', DEVICES)
def test_bbox_overlaps(reference, device):
    from mmcv.ops import bbox_overlaps
    for case in reference['bbox_overlaps']:
        ious = bbox_overlaps(case['bboxes1'].to(device),
                             case['bboxes2'].to(device), case['mode'],
                             case['aligned'], case['offset'])
        if device == 'cpu':
            # The same float32 operations as mmcv's CPU kernel; its zero
            # unions give NaN, which the CUDA kernel avoids.
            torch.testing.assert_close(ious, case['ious'], rtol=0, atol=0,
                                       equal_nan=True)
        else:
            finite = case['ious'].isfinite()
            close(ious.cpu()[finite], case['ious'][finite], 1e-6)
