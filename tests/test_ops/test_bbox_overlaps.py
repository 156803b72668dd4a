"""mmdist.ops.bbox_overlaps through mmcv's ``bbox_overlaps``, against
mmcv's CPU kernel (bbox_overlaps_cpu.cpp) written out one pair at a time,
in the boxes' own float arithmetic and without an epsilon."""
import numpy as np
import pytest
import torch

import mmdist  # noqa: F401
from mmdist.ops import bbox_overlaps as ours

pytestmark = pytest.mark.usefixtures('mmdist_ops_in_mmcv')

DEVICES = ['cpu', pytest.param('cuda', marks=pytest.mark.gpu)]


def kernel_pairs(boxes1, boxes2, mode, aligned, offset, f=np.float32):
    """The CPU kernel's formula per pair, in ``f`` arithmetic."""
    off = f(offset)

    def area(b):
        return (b[2] - b[0] + off) * (b[3] - b[1] + off)

    def overlap(a, b):
        # torch.max/min and clamp propagate NaN.
        wh = []
        for lo, hi in ((0, 2), (1, 3)):
            v = np.minimum(
                np.minimum(a[hi], b[hi]) - np.maximum(a[lo], b[lo]) + off,
                f(2.0**31))
            wh.append(v if np.isnan(v) else max(v, f(0)))
        inter = wh[0] * wh[1]
        if mode == 'iou':
            return inter / (area(a) + area(b) - inter)
        return inter / area(a)

    rows1 = [[f(v) for v in row] for row in boxes1.tolist()]
    rows2 = [[f(v) for v in row] for row in boxes2.tolist()]
    with np.errstate(all='ignore'):
        if aligned:
            out = [overlap(a, b) for a, b in zip(rows1, rows2)]
        else:
            out = [[overlap(a, b) for b in rows2] for a in rows1]
    shape = (len(rows1), ) if aligned else (len(rows1), len(rows2))
    return torch.from_numpy(np.array(out, dtype=f).reshape(shape))


def boxes_with_edge_cases(n, seed, offset):
    """Random boxes plus identical, touching, degenerate (zero-size),
    inverted and huge ones."""
    g = torch.Generator().manual_seed(seed)
    xy = torch.rand(n, 2, generator=g) * 50
    boxes = torch.cat([xy, xy + torch.rand(n, 2, generator=g) * 30], 1)
    if offset:
        boxes = boxes.round()
    special = torch.tensor([[10., 10., 20., 20.], [10., 10., 20., 20.],
                            [20., 10., 30., 20.], [5., 5., 5., 5.],
                            [5., 5., 5., 5.], [5., 5., 5., 9.],
                            [30., 30., 25., 40.], [0., 0., 1e4, 1e4],
                            [-2e9, 0., 2e9, 1.]])  # clamped at 2**31 wide
    return torch.cat([boxes, special])


def assert_same(actual, expected):
    torch.testing.assert_close(actual, expected, rtol=0, atol=0,
                               equal_nan=True)


@pytest.mark.parametrize('mode', ['iou', 'iof'])
@pytest.mark.parametrize('aligned', [False, True])
@pytest.mark.parametrize('offset', [0, 1])
@pytest.mark.parametrize('device', DEVICES)
def test_bbox_overlaps_equals_kernel(mode, aligned, offset, device):
    from mmcv.ops import bbox_overlaps
    boxes1 = boxes_with_edge_cases(30, 0, offset)
    boxes2 = boxes_with_edge_cases(30, 1, offset).flip(0)
    if not aligned:
        boxes2 = boxes2[:25]
    ious = bbox_overlaps(boxes1.to(device), boxes2.to(device), mode, aligned,
                         offset)
    expected = kernel_pairs(boxes1, boxes2, mode, aligned, offset)
    assert ious.device.type == device
    if device == 'cpu':
        assert_same(ious, expected)
    else:
        torch.testing.assert_close(ious.cpu(), expected, equal_nan=True)
    if offset == 0 and mode == 'iou' and not aligned:
        # Identical zero-size boxes: 0 / 0, no epsilon, as on CPU.
        assert ious.isnan().any()


def test_bbox_overlaps_hand_checked():
    """mmcv's docstring example and offset=1 pixel boxes."""
    from mmcv.ops import bbox_overlaps
    b1 = torch.tensor([[0., 0., 10., 10.], [10., 10., 20., 20.],
                       [32., 32., 38., 42.]])
    b2 = torch.tensor([[0., 0., 10., 20.], [0., 10., 10., 19.],
                       [10., 10., 20., 20.]])
    assert bbox_overlaps(b1, b2).tolist() == [[0.5, 0., 0.], [0., 0., 1.],
                                              [0., 0., 0.]]
    # Pixel boxes 0..3 x 0..3 (16 pixels) and 3..4 x 0..3 (8): 4 shared.
    ious = bbox_overlaps(torch.tensor([[0., 0., 3., 3.]]),
                         torch.tensor([[3., 0., 4., 3.]]), offset=1)
    assert ious.tolist() == [[np.float32(4) / np.float32(20)]]
    iof = bbox_overlaps(torch.tensor([[0., 0., 3., 3.]]),
                        torch.tensor([[3., 0., 4., 3.]]), 'iof', offset=1)
    assert iof.tolist() == [[0.25]]


def test_bbox_overlaps_float64_and_half():
    """float64 is computed in float64 as the kernel does; half in float32
    (mmcv computes it in half, whose areas overflow above 65504) and
    written back in half."""
    from mmcv.ops import bbox_overlaps
    boxes1 = boxes_with_edge_cases(20, 2, 0)
    boxes2 = boxes_with_edge_cases(20, 3, 0)
    ious = bbox_overlaps(boxes1.double(), boxes2.double())
    assert ious.dtype == torch.float64
    assert_same(ious, kernel_pairs(boxes1.double(), boxes2.double(), 'iou',
                                   False, 0, f=np.float64))
    ious = bbox_overlaps(boxes1.half(), boxes2.half(), aligned=False)
    assert ious.dtype == torch.half
    expected = kernel_pairs(boxes1.half().float(), boxes2.half().float(),
                            'iou', False, 0)
    assert_same(ious, expected.half())
    # A 300 x 300 box: its area overflows half, not float32.
    big = torch.tensor([[0., 0., 300., 300.]], dtype=torch.half)
    assert bbox_overlaps(big, big).tolist() == [[1.0]]


def test_bbox_overlaps_chunks(monkeypatch):
    """Pairs computed a few rows at a time give the same values."""
    from mmcv.ops import bbox_overlaps
    boxes1 = boxes_with_edge_cases(60, 4, 0)
    boxes2 = boxes_with_edge_cases(40, 5, 0)
    whole = bbox_overlaps(boxes1, boxes2, 'iof')
    monkeypatch.setattr(ours, '_CHUNK', 100)  # 2 rows of 48 at a time
    assert_same(bbox_overlaps(boxes1, boxes2, 'iof'), whole)


def test_bbox_overlaps_empty_and_bad_arguments():
    from mmcv.ops import bbox_overlaps
    empty, boxes = torch.zeros(0), torch.rand(3, 4)
    assert bbox_overlaps(empty, boxes).shape == (0, 3)
    assert bbox_overlaps(boxes, torch.zeros(0, 4)).shape == (3, 0)
    assert bbox_overlaps(empty, empty, aligned=True).shape == (0, )
    ious = torch.empty(0, 3)
    ours.bbox_overlaps(empty, boxes, ious, mode=0, aligned=False, offset=0)
    good = dict(bboxes1=boxes, bboxes2=boxes, ious=torch.empty(3, 3), mode=0,
                aligned=False, offset=0)
    bad = [(dict(bboxes1=torch.rand(3, 5)), r'bboxes1 \(N, 4\)'),
           (dict(ious=torch.empty(3, 1)), r'\(M, N\) = \(3, 3\)'),
           (dict(aligned=True), r'\(M,\) = \(3,\)'),
           (dict(aligned=True, bboxes2=torch.rand(2, 4),
                 ious=torch.empty(3)), 'as many'),
           (dict(mode=2), 'mode'), (dict(offset=2), 'offset')]
    for change, message in bad:
        with pytest.raises(ValueError, match=message):
            ours.bbox_overlaps(**dict(good, **change))
