"""The agreement measures of tools/deploy.py against references written out
(torchvision's box IoU, a brute-force best match, counted pixels)."""
import pytest
import torch
from mmdet.structures import DetDataSample
from mmengine.structures import InstanceData, PixelData
from mmpretrain.structures import DataSample
from mmseg.structures import SegDataSample
from torchvision.ops import box_iou

from mmdist.apis.deploy.agreement import (_iou, clip_to_image,
                                          compare_classification,
                                          compare_detections,
                                          compare_segmentation, failures)


def detections(boxes, scores, labels, shape=(100, 200)):
    sample = DetDataSample(metainfo=dict(ori_shape=shape))
    sample.pred_instances = InstanceData(
        bboxes=torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4),
        scores=torch.tensor(scores), labels=torch.tensor(labels))
    return sample


def test_iou_is_torchvisions():
    g = torch.Generator().manual_seed(0)
    corners = torch.rand(7, 2, generator=g) * 50
    a = torch.cat([corners, corners + torch.rand(7, 2, generator=g) * 30], 1)
    corners = torch.rand(5, 2, generator=g) * 50
    b = torch.cat([corners, corners + torch.rand(5, 2, generator=g) * 30], 1)
    torch.testing.assert_close(_iou(a.double(), b.double()),
                               box_iou(a.double(), b.double()))


def test_boxes_match_within_their_class_by_iou():
    ours = [detections([[0, 0, 10, 10], [20, 20, 40, 40], [50, 50, 60, 60],
                        [70, 70, 80, 80]], [0.9, 0.8, 0.7, 0.6], [1, 2, 1, 3])]
    # The second box shifted by a pixel; the third of another class.
    theirs = [detections([[0, 0, 10, 10], [21, 20, 41, 40], [50, 50, 60, 60],
                          [70, 70, 80, 80]], [0.9, 0.8005, 0.7, 0.6],
                         [1, 2, 0, 3])]
    got = compare_detections(ours, theirs)
    shifted = box_iou(torch.tensor([[20., 20, 40, 40]]),
                      torch.tensor([[21., 20, 41, 40]])).item()
    assert got['boxes_pytorch'] == got['boxes_onnx'] == 4
    assert got['matched'] == pytest.approx(3 / 4)
    assert got['at_cutoff'] == 0
    assert got['min_iou'] == pytest.approx(shifted)
    assert got['max_score_diff'] == pytest.approx(0.0005, abs=1e-6)
    assert got['max_box_diff_px'] == pytest.approx(1.0)
    found = failures('detection', got)
    assert found[:2] == [
        'matched = 0.75 (expected >= 0.98)',
        f'min_iou = {shifted:.6g} (expected >= 0.99)']
    # The scores agree, so the boxes NMS kept may differ by near-ties.
    assert len(found) == 3 and 'nms.iou_threshold=1.0' in found[2]


def test_tied_boxes_swapped_at_the_cutoff_are_counted_not_compared():
    # The last place: PyTorch kept one box, ONNX Runtime another of a
    # score within float rounding (1e-7) of it.
    ours = [detections([[0, 0, 10, 10], [20, 20, 40, 40]], [0.9, 0.5],
                       [1, 2])]
    theirs = [detections([[0, 0, 10, 10], [60, 60, 80, 80]],
                         [0.9, 0.5000001], [1, 2])]
    got = compare_detections(ours, theirs)
    assert got['at_cutoff'] == 2
    assert (got['boxes_pytorch'], got['boxes_onnx']) == (1, 1)
    assert got['matched'] == 1.0 and failures('detection', got) == []
    # The only box of each side, swapped: nothing left to compare.
    alone = compare_detections([detections([[20, 20, 40, 40]], [0.5], [2])],
                               [detections([[60, 60, 80, 80]], [0.5000001],
                                           [2])])
    assert alone['at_cutoff'] == 2 and alone['boxes_pytorch'] == 0
    # Not tied (0.4 is no rounding of 0.5): a disagreement.
    theirs = [detections([[0, 0, 10, 10], [60, 60, 80, 80]], [0.9, 0.4],
                         [1, 2])]
    got = compare_detections(ours, theirs)
    assert got['at_cutoff'] == 0 and got['matched'] == 0.5
    # One box more on one side is no swap, tied or not.
    theirs = [detections([[0, 0, 10, 10], [20, 20, 40, 40], [60, 60, 80, 80]],
                         [0.9, 0.5, 0.5000001], [1, 2, 2])]
    got = compare_detections(ours, theirs)
    assert got['at_cutoff'] == 0 and got['matched'] == pytest.approx(2 / 3)


def test_no_near_tie_hint_where_scores_differ():
    ours = [detections([[0, 0, 10, 10], [20, 20, 40, 40]], [0.9, 0.8],
                       [1, 2])]
    theirs = [detections([[0, 0, 10, 10], [50, 50, 60, 60]], [0.7, 0.8],
                         [1, 2])]
    found = failures('detection', compare_detections(ours, theirs))
    assert found[0] == 'matched = 0.5 (expected >= 0.98)'
    assert found[-1] == 'max_score_diff = 0.2 (expected <= 0.001)'


def test_matching_is_shared_both_ways():
    # One PyTorch box, two exported ones: half of theirs unmatched.
    ours = [detections([[0, 0, 10, 10]], [0.9], [0])]
    theirs = [detections([[0, 0, 10, 10], [30, 30, 50, 50]], [0.9, 0.5],
                         [0, 0])]
    assert compare_detections(ours, theirs)['matched'] == 0.5


def test_no_boxes_is_no_check():
    nothing = [detections(torch.zeros(0, 4).tolist(), [], [])]
    got = compare_detections(nothing, nothing)
    assert got['boxes_pytorch'] == 0
    assert 'no boxes to compare' in failures('detection', got)[0]


def test_exported_boxes_are_clipped_to_the_image():
    sample = detections([[-5, 3, 210, 120]], [0.9], [0], shape=(100, 200))
    clip_to_image(sample)
    assert sample.pred_instances.bboxes.tolist() == [[0, 3, 200, 100]]


def test_pixels_are_counted_over_every_image():
    def label_map(values):
        sample = SegDataSample()
        sample.pred_sem_seg = PixelData(data=torch.tensor([values]))
        return sample
    ours = [label_map([[1, 2], [3, 4]]), label_map([[0, 0], [0, 0]])]
    theirs = [label_map([[1, 2], [3, 0]]), label_map([[0, 0], [0, 0]])]
    got = compare_segmentation(ours, theirs)
    assert got == dict(pixels=7 / 8, pixel_count=8)
    assert failures('segmentation', got) == [
        'pixels = 0.875 (expected >= 0.999)']


def test_top1_top5_and_the_largest_probability_difference():
    def scores(values):
        return DataSample().set_pred_score(torch.tensor(values))
    a = [0.40, 0.20, 0.15, 0.10, 0.08, 0.07]
    b = [0.20, 0.40, 0.15, 0.10, 0.08, 0.07]  # top-1 swapped, same top-5
    c = [0.40, 0.20, 0.15, 0.10, 0.01, 0.14]  # top-5 differs
    got = compare_classification([scores(a), scores(a)],
                                 [scores(b), scores(c)])
    assert got['top1'] == 0.5 and got['top5'] == 0.5 and got['images'] == 2
    assert got['max_prob_diff'] == pytest.approx(0.2)


def test_boxes_without_area_match_themselves():
    # An untrained detector's points: IoU 0/0, the same box all the same.
    points = [[5, 5, 5, 5], [9, 1, 9, 1]]
    ours = [detections(points, [0.01, 0.01], [2, 2])]
    theirs = [detections(points[::-1], [0.01, 0.01], [2, 2])]
    got = compare_detections(ours, theirs)
    assert got['matched'] == 1.0 and got['min_iou'] == 1.0


def test_inverted_boxes_are_counted_not_compared():
    # ONNX's NMS ordered the corners of [30, 30, 20, 20] and let it
    # suppress a box that mmcv's nms kept: only the proper boxes count.
    ours = [detections([[0, 0, 10, 10], [30, 30, 20, 20], [19, 19, 29, 29]],
                       [0.9, 0.5, 0.4], [0, 0, 0])]
    theirs = [detections([[0, 0, 10, 10], [30, 30, 20, 20]], [0.9, 0.5],
                         [0, 0])]
    got = compare_detections(ours, theirs)
    assert (got['inverted_pytorch'], got['inverted_onnx']) == (1, 1)
    assert (got['boxes_pytorch'], got['boxes_onnx']) == (2, 1)
    assert got['matched'] == 0.5
    only_inverted = compare_detections(
        [detections([[30, 30, 20, 20]], [0.5], [0])],
        [detections([[30, 30, 20, 20]], [0.5], [0])])
    assert 'only inverted boxes' in failures('detection', only_inverted)[0]


def test_boxes_clipped_alike_match_by_score():
    # Two boxes clipped to the same border: each pairs with its own score.
    edge = [0, 0, 200, 100]
    ours = [detections([edge, edge], [0.6, 0.3], [1, 1])]
    theirs = [detections([edge, edge], [0.3, 0.6], [1, 1])]
    got = compare_detections(ours, theirs)
    assert got['matched'] == 1.0 and got['max_score_diff'] == 0.0
