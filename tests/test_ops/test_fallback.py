"""mmdist.ops.fallback against mmcv's own CPU kernels and mmdet's focal
loss, called through mmcv's Python ops with the routing forced on CPU."""
import pytest
import torch

import mmdist  # noqa: F401
from mmdist import compat
from mmdist.ops import fallback


@pytest.fixture
def forced():
    """Route mmcv's ops through the fallback on CPU, then undo it."""
    routed = compat.route_mmcv_ops(force=True)
    yield routed
    compat.route_mmcv_ops(force=False)


def detections(n: int = 600, seed: int = 0, tie_step: float = 0.05):
    """Clusters of overlapping boxes as a detector proposes them, with
    scores rounded so that many tie."""
    g = torch.Generator().manual_seed(seed)
    centres = torch.rand(n // 20, 2, generator=g) * 600
    centre = centres.repeat_interleave(20, 0) + torch.randn(n, 2,
                                                            generator=g) * 8
    wh = 20 + torch.rand(n, 2, generator=g) * 80
    boxes = torch.cat([centre - wh / 2, centre + wh / 2], 1)
    scores = (torch.rand(n, generator=g) / tie_step).round() * tie_step
    return boxes, scores


def mmcv_nms(boxes, scores, threshold, offset=0):
    from mmcv.ops import nms
    return nms(boxes, scores, threshold, offset=offset)[1]


@pytest.mark.parametrize('threshold', [0.3, 0.5, 0.7])
@pytest.mark.parametrize('offset', [0, 1])
def test_nms_keeps_what_mmcv_keeps(threshold, offset):
    for seed in range(3):
        boxes, scores = detections(seed=seed)
        if offset:
            boxes = boxes.round()  # integer pixel boxes, as offset=1 implies
        ours = fallback.nms(boxes, scores, threshold, offset)
        theirs = mmcv_nms(boxes, scores, threshold, offset)
        assert 0 < len(theirs) < len(boxes)
        assert torch.equal(ours, theirs)


def test_nms_ties_keep_mmcv_order():
    # Many identical boxes and scores: which one survives is decided by the
    # order of the sort alone.
    boxes = torch.tensor([[0., 0., 10., 10.]] * 8 + [[50., 50., 60., 60.]] * 8)
    scores = torch.tensor([0.5] * 16)
    theirs = mmcv_nms(boxes, scores, 0.5)
    assert len(theirs) == 2
    assert torch.equal(fallback.nms(boxes, scores, 0.5, 0), theirs)


@pytest.mark.parametrize('threshold', [0.3, 0.5, 0.7])
def test_nms_threshold_edge(threshold):
    # IoU exactly at the threshold (computed in float32, as both kernels
    # do): the box is kept, since only IoU > threshold suppresses; a hair
    # above it, the box goes.
    inter = {0.3: 3., 0.5: 5., 0.7: 7.}[threshold]
    boxes = torch.tensor([[0., 0., 10., 1.], [0., 0., inter, 1.],
                          [20., 0., 30., 1.], [20., 0., 20 + inter + 0.01,
                                               1.]])
    scores = torch.tensor([0.9, 0.8, 0.7, 0.6])
    theirs = mmcv_nms(boxes, scores, threshold)
    ours = fallback.nms(boxes, scores, threshold, 0)
    assert torch.equal(ours, theirs)
    assert 1 in theirs.tolist() and 3 not in theirs.tolist()


def test_nms_empty_and_score_threshold(forced):
    from mmcv.ops import nms
    dets, keep = nms(torch.zeros(0, 4), torch.zeros(0), 0.5)
    assert dets.shape == (0, 5) and keep.shape == (0,)
    boxes, scores = detections()
    compat.route_mmcv_ops(force=False)
    expected = nms(boxes, scores, 0.5, score_threshold=0.3, max_num=50)
    compat.route_mmcv_ops(force=True)
    got = nms(boxes, scores, 0.5, score_threshold=0.3, max_num=50)
    for a, b in zip(got, expected):
        assert torch.equal(a, b)


def test_batched_nms_through_mmcv(forced):
    from mmcv.ops import batched_nms
    boxes, scores = detections(n=2000)
    labels = torch.randint(0, 80, (2000,), generator=torch.Generator()
                           .manual_seed(1))
    cfg = dict(type='nms', iou_threshold=0.6)
    got = batched_nms(boxes, scores, labels, cfg)
    compat.route_mmcv_ops(force=False)
    expected = batched_nms(boxes, scores, labels, cfg)
    for a, b in zip(got, expected):
        assert torch.equal(a, b)


def rois_and_features(seed: int = 0):
    """Two FPN-like feature maps' worth of input and image-space RoIs."""
    g = torch.Generator().manual_seed(seed)
    feats = torch.randn(2, 16, 50, 68, generator=g)
    xy = torch.rand(64, 2, generator=g) * 400
    wh = 4 + torch.rand(64, 2, generator=g) * 300
    index = torch.randint(0, 2, (64, 1), generator=g).float()
    rois = torch.cat([index, xy, xy + wh], 1)
    return feats, rois


@pytest.mark.parametrize('sampling_ratio', [0, 2])
@pytest.mark.parametrize('aligned', [True, False])
def test_roi_align_matches_mmcv(sampling_ratio, aligned):
    from mmcv.ops import roi_align
    feats, rois = rois_and_features()
    args = ((7, 7), 1 / 8, sampling_ratio, 'avg', aligned)
    results = []
    for force in (False, True):
        compat.route_mmcv_ops(force=force)
        x = feats.clone().requires_grad_(True)
        out = roi_align(x, rois, *args)
        grad_out = torch.randn(out.shape,
                               generator=torch.Generator().manual_seed(2))
        out.backward(grad_out)
        results.append((out.detach(), x.grad))
    compat.route_mmcv_ops(force=False)
    (mmcv_out, mmcv_grad), (ours_out, ours_grad) = results
    assert mmcv_out.abs().sum() > 0 and mmcv_grad.abs().sum() > 0
    assert (ours_out - mmcv_out).abs().max() < 1e-5
    assert (ours_grad - mmcv_grad).abs().max() < 1e-5


def test_roi_align_max_mode_is_refused(forced):
    from mmcv.ops import roi_align
    feats, rois = rois_and_features()
    with pytest.raises(NotImplementedError, match="pool_mode='max'"):
        roi_align(feats, rois, (7, 7), 1 / 8, 0, 'max', True)


def focal_inputs(n=500, classes=80, seed=0):
    g = torch.Generator().manual_seed(seed)
    pred = torch.randn(n, classes, generator=g) * 3
    # A quarter foreground, the rest background (label == classes).
    target = torch.full((n,), classes, dtype=torch.long)
    fg = torch.rand(n, generator=g) < 0.25
    target[fg] = torch.randint(0, classes, (int(fg.sum()),), generator=g)
    return pred, target


def test_focal_loss_equals_mmdet(forced):
    """mmcv's sigmoid_focal_loss (what mmdet's FocalLoss calls on a GPU)
    gives mmdet's own py_sigmoid_focal_loss, value and gradient."""
    import torch.nn.functional as F
    from mmdet.models.losses.focal_loss import (py_sigmoid_focal_loss,
                                                sigmoid_focal_loss)
    pred, target = focal_inputs()
    weight = torch.rand(len(pred), generator=torch.Generator().manual_seed(3))
    onehot = F.one_hot(target, 81)[:, :80].float()
    for kwargs in (dict(), dict(weight=weight, avg_factor=37.0),
                   dict(gamma=1.5, alpha=0.5, reduction='sum')):
        a = pred.clone().requires_grad_(True)
        b = pred.clone().requires_grad_(True)
        ours = sigmoid_focal_loss(a, target, **kwargs)
        expected = py_sigmoid_focal_loss(b, onehot, **kwargs)
        ours.backward()
        expected.backward()
        torch.testing.assert_close(ours, expected, rtol=1e-6, atol=1e-7)
        torch.testing.assert_close(a.grad, b.grad, rtol=1e-5, atol=1e-8)


def test_focal_loss_class_weight_and_bad_shapes(forced):
    from mmcv.ops import sigmoid_focal_loss
    pred, target = focal_inputs(n=64, classes=5)
    target = target.clamp(max=4)  # all foreground
    weight = torch.linspace(0.5, 2.0, 5)
    plain = sigmoid_focal_loss(pred, target, 2.0, 0.25, None, 'none')
    weighted = sigmoid_focal_loss(pred, target, 2.0, 0.25, weight, 'none')
    torch.testing.assert_close(weighted, plain * weight[target][:, None])
    background = torch.full_like(target, 5)
    with pytest.raises(ValueError, match='foreground target'):
        sigmoid_focal_loss(pred, background, 2.0, 0.25, weight, 'none')
    with pytest.raises(ValueError, match=r'expects input \(N, C\)'):
        fallback.sigmoid_focal_loss_forward(pred, target[:10], pred.new_empty(
            0), torch.empty_like(pred), 2.0, 0.25)
