"""mmdist.ops.nms through mmcv's ``nms`` against greedy NMS written out
plainly (the comparison with mmcv's compiled kernel is in
test_mmcv_reference.py)."""
from typing import List

import pytest
import torch

import mmdist  # noqa: F401
from mmdist.ops.nms import nms as standin_nms
from tests.test_ops.record_mmcv_reference import detections

pytestmark = pytest.mark.usefixtures('mmdist_ops_in_mmcv')


def greedy_nms(boxes: torch.Tensor, scores: torch.Tensor, threshold: float,
               offset: int) -> List[int]:
    """Highest score first (stable among ties: lower index first), drop
    every later box whose IoU with a kept one exceeds ``threshold``."""
    order = sorted(range(len(scores)), key=lambda i: (-float(scores[i]), i))
    b = boxes.double().tolist()

    def iou(i, j):
        w = min(b[i][2], b[j][2]) - max(b[i][0], b[j][0]) + offset
        h = min(b[i][3], b[j][3]) - max(b[i][1], b[j][1]) + offset
        inter = max(w, 0) * max(h, 0)
        area = [(x2 - x1 + offset) * (y2 - y1 + offset)
                for x1, y1, x2, y2 in (b[i], b[j])]
        return inter / (area[0] + area[1] - inter)

    keep: List[int] = []
    for i in order:
        if all(iou(i, k) <= threshold for k in keep):
            keep.append(i)
    return keep


@pytest.mark.parametrize('offset', [0, 1])
@pytest.mark.parametrize('threshold', [0.3, 0.6])
def test_nms_equals_greedy_nms(threshold, offset):
    for seed in range(2):
        boxes, _ = detections(300, seed)
        boxes = boxes.round() if offset else boxes
        # Distinct scores: the plain version's tie order is its own.
        scores = torch.randperm(
            300, generator=torch.Generator().manual_seed(seed)).float()
        keep = standin_nms(boxes, scores, threshold, offset)
        expected = greedy_nms(boxes, scores, threshold, offset)
        assert 0 < len(expected) < len(boxes)
        assert keep.tolist() == expected


def test_nms_wrapper_options_and_empty_input():
    from mmcv.ops import nms
    dets, keep = nms(torch.zeros(0, 4), torch.zeros(0), 0.5)
    assert dets.shape == (0, 5) and keep.shape == (0, )
    boxes, _ = detections(600, 0)
    scores = torch.randperm(
        600, generator=torch.Generator().manual_seed(0)).float() / 600
    dets, keep = nms(boxes, scores, 0.5, score_threshold=0.3, max_num=50)
    above = (scores > 0.3).nonzero()[:, 0]
    expected = above[greedy_nms(boxes[above], scores[above], 0.5, 0)[:50]]
    assert len(keep) == 50
    assert keep.tolist() == expected.tolist()
    assert torch.equal(dets, torch.cat([boxes, scores[:, None]], 1)[keep])
