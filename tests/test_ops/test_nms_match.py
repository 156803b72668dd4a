"""mmdist.ops.nms_match through mmcv's ``nms_match``, against mmcv's CPU
kernel (``nms_match_cpu`` in csrc/pytorch/cpu/nms.cpp) written out as a
plain loop in float32."""
import numpy as np
import pytest
import torch

import mmdist  # noqa: F401
from mmdist.ops import nms_match as ours
from tests.test_ops.record_mmcv_reference import detections

pytestmark = pytest.mark.usefixtures('mmdist_ops_in_mmcv')

DEVICES = ['cpu', pytest.param('cuda', marks=pytest.mark.gpu)]


def kernel_loop(dets, iou_threshold, order=None):
    """mmcv's kernel one pair at a time in C float arithmetic. ``order``:
    the visiting order; the kernel's is ``scores.sort(0, descending=True)``
    (torch's sort, not stable), the default here is by score, then
    index (the same when no scores tie)."""
    f = np.float32
    x1, y1, x2, y2, scores = ([f(v) for v in col]
                              for col in dets.t().tolist())
    area = [(x2[k] - x1[k]) * (y2[k] - y1[k]) for k in range(len(x1))]
    if order is None:
        order = sorted(range(len(x1)), key=lambda k: (-scores[k], k))
    thr = f(iou_threshold)
    suppressed = [False] * len(x1)
    groups = []
    with np.errstate(all='ignore'):
        for a, i in enumerate(order):
            if suppressed[i]:
                continue
            group = [i]
            for j in order[a + 1:]:
                if suppressed[j]:
                    continue
                xx1 = x1[j] if x1[i] < x1[j] else x1[i]
                yy1 = y1[j] if y1[i] < y1[j] else y1[i]
                xx2 = x2[j] if x2[j] < x2[i] else x2[i]
                yy2 = y2[j] if y2[j] < y2[i] else y2[i]
                w, h = xx2 - xx1, yy2 - yy1
                inter = (w if f(0) < w else f(0)) * (h if f(0) < h else f(0))
                if inter / (area[i] + area[j] - inter) >= thr:
                    suppressed[j] = True
                    group.append(j)
            groups.append(group)
    return groups


def as_lists(groups):
    return [g.tolist() for g in groups]


@pytest.mark.parametrize('iou', [0.3, 0.5, 0.7])
def test_nms_match_equals_kernel_loop(iou):
    from mmcv.ops import nms_match
    for seed in range(2):
        boxes, _ = detections(200, seed)
        # Distinct scores: the order is the scores' alone.
        scores = torch.randperm(
            200, generator=torch.Generator().manual_seed(seed)).float()
        dets = torch.cat([boxes, scores[:, None]], 1)
        groups = nms_match(dets, iou)
        assert all(g.dtype == torch.long for g in groups)
        expected = kernel_loop(dets, iou)
        assert 10 < len(expected) < 190
        assert as_lists(groups) == expected


@pytest.mark.parametrize('iou', [0.3, 0.6])
def test_nms_match_ties_follow_torch_sort(iou):
    """Scores on steps of 0.05: ties are visited in the order of torch's
    (unstable) sort, the kernel's first step."""
    from mmcv.ops import nms_match
    boxes, scores = detections(400, 2)
    dets = torch.cat([boxes, scores[:, None]], 1)
    order = scores.sort(0, descending=True)[1].tolist()
    expected = kernel_loop(dets, iou, order)
    assert as_lists(nms_match(dets, iou)) == expected
    assert expected != kernel_loop(dets, iou)  # the tie order matters
    # Every box is in exactly one group.
    assert sorted(sum(expected, [])) == list(range(400))


def test_nms_match_threshold_and_degenerate_boxes():
    from mmcv.ops import nms_match
    # IoU exactly 0.5: matched at 0.5 (>=), not above.
    dets = torch.tensor([[0., 0., 10., 1., .9], [0., 0., 5., 1., .8]])
    assert as_lists(nms_match(dets, 0.5)) == [[0, 1]]
    assert as_lists(nms_match(dets, 0.5001)) == [[0], [1]]
    # IoU 7 / 10 is float(0.7), below 0.7: the threshold is a C float too.
    dets[1, 2] = 7
    assert as_lists(nms_match(dets, 0.7)) == [[0, 1]]
    # No +1 offset: boxes touching at an edge do not overlap; identical
    # zero-size boxes have IoU 0 / 0 (nan), matching nothing.
    dets = torch.tensor([[0., 0., 4., 4., .9], [4., 0., 8., 4., .8],
                         [9., 9., 9., 12., .7], [9., 9., 9., 12., .6],
                         [0., 0., 4., 4., .5]])
    assert as_lists(nms_match(dets, 0.)) == [[0, 1, 2, 3, 4]]
    assert as_lists(nms_match(dets, 1e-6)) == [[0, 4], [1], [2], [3]]
    assert as_lists(nms_match(dets, 1e-6)) == kernel_loop(dets, 1e-6)


def test_nms_match_float32_iou():
    """Thresholds equal to a pair's float32 IoU match it: the IoU is
    computed in float32 as the kernel does (in float64 about half of them
    would fall below)."""
    from mmcv.ops import nms_match
    g = torch.Generator().manual_seed(0)
    for _ in range(40):
        corner = torch.rand(2, 2, generator=g) * 4
        size = 5 + torch.rand(2, 2, generator=g) * 10
        dets = torch.cat([corner, corner + size, torch.tensor([[.9], [.8]])],
                         1)
        f = np.float32
        (a, b, c, d, _), (e, h, i, j, _) = [[f(v) for v in row]
                                            for row in dets.tolist()]
        inter = max(f(0), min(c, i) - max(a, e)) * max(
            f(0), min(d, j) - max(b, h))
        iou = inter / ((c - a) * (d - b) + (i - e) * (j - h) - inter)
        assert iou > 0
        assert as_lists(nms_match(dets, float(iou))) == [[0, 1]]


def test_nms_match_numpy_empty_and_bad_shape():
    from mmcv.ops import nms_match
    assert nms_match(torch.zeros(0, 5), 0.5) == []
    assert nms_match(np.zeros((0, 5), np.float32), 0.5) == []
    boxes, _ = detections(100, 3)
    scores = torch.randperm(100, generator=torch.Generator().manual_seed(3))
    dets = torch.cat([boxes, scores[:, None].float() / 100], 1)
    groups = nms_match(dets.numpy(), 0.4)
    assert all(isinstance(g, np.ndarray) for g in groups)
    assert [g.tolist() for g in groups] == kernel_loop(dets, 0.4)
    with pytest.raises(ValueError, match=r'dets \(N, 5\)'):
        ours.nms_match(torch.rand(3, 4), 0.5)


@pytest.mark.parametrize('device', DEVICES)
def test_nms_match_device(device):
    """The op itself on ``device`` (mmcv's wrapper runs it on CPU)."""
    boxes, _ = detections(200, 4)
    scores = torch.randperm(200, generator=torch.Generator().manual_seed(4))
    dets = torch.cat([boxes, scores[:, None].float()], 1)
    dets0 = dets.clone()
    assert ours.nms_match(dets.to(device), 0.5) == kernel_loop(dets, 0.5)
    assert torch.equal(dets, dets0)
