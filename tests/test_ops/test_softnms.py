"""mmdist.ops.softnms through mmcv's ``soft_nms`` and ``batched_nms``,
against mmcv's CPU kernel (``softnms_cpu`` in csrc/pytorch/cpu/nms.cpp)
written out as a plain loop in float32: its in-place swaps, its scan for the
highest score and its drop-and-swap of boxes below ``min_score`` decide the
order of the output and the winner of every tie."""
import ctypes
import ctypes.util
import math

import numpy as np
import pytest
import torch

import mmdist  # noqa: F401
from mmdist.ops import softnms as ours
from tests.test_ops.record_mmcv_reference import detections

pytestmark = pytest.mark.usefixtures('mmdist_ops_in_mmcv')

DEVICES = ['cpu', pytest.param('cuda', marks=pytest.mark.gpu)]
METHODS = {'naive': 0, 'linear': 1, 'gaussian': 2}

# The kernel's std::exp of a float: the C library's expf.
_LIBM = ctypes.CDLL(ctypes.util.find_library('m'))
_LIBM.expf.restype, _LIBM.expf.argtypes = ctypes.c_float, [ctypes.c_float]


def expf(x):
    return np.float32(_LIBM.expf(float(x)))


def kernel_iou(a, b, offset):
    """The kernel's IoU of rows ``x1, y1, x2, y2, area`` of C floats,
    ``a`` the picked box (``std::max``/``std::min`` keep it on NaN)."""
    f = np.float32
    xx1 = b[0] if a[0] < b[0] else a[0]
    yy1 = b[1] if a[1] < b[1] else a[1]
    xx2 = b[2] if b[2] < a[2] else a[2]
    yy2 = b[3] if b[3] < a[3] else a[3]
    w, h = xx2 - xx1 + offset, yy2 - yy1 + offset
    inter = (w if f(0) < w else f(0)) * (h if f(0) < h else f(0))
    return inter / (a[4] + b[4] - inter)


def kernel_loop(boxes, scores, iou_threshold, sigma, min_score, method,
                offset):
    """mmcv's kernel, one box at a time, in C float arithmetic: the rows of
    ``dets`` it writes and the indices it returns."""
    f = np.float32
    x1, y1, x2, y2 = ([f(v) for v in col] for col in boxes.t().tolist())
    sc = [f(v) for v in scores.tolist()]
    off = f(offset)
    area = [(x2[k] - x1[k] + off) * (y2[k] - y1[k] + off)
            for k in range(len(sc))]
    inds = list(range(len(sc)))
    columns = (x1, y1, x2, y2, sc, area, inds)
    thr, sigma, min_score = f(iou_threshold), f(sigma), f(min_score)
    n, i, dets = len(sc), 0, []
    with np.errstate(all='ignore'):
        while i < n:
            best = i
            for p in range(i + 1, n):
                if sc[best] < sc[p]:
                    best = p
            for col in columns:
                col[i], col[best] = col[best], col[i]
            dets.append([x1[i], y1[i], x2[i], y2[i], sc[i]])
            p = i + 1
            while p < n:
                ovr = kernel_iou([x1[i], y1[i], x2[i], y2[i], area[i]],
                                 [x1[p], y1[p], x2[p], y2[p], area[p]], off)
                weight = f(1)
                if method == 0 and ovr >= thr:
                    weight = f(0)
                elif method == 1 and ovr >= thr:
                    weight = f(1) - ovr
                elif method == 2:
                    weight = expf(-(ovr * ovr) / sigma)
                sc[p] = sc[p] * weight
                if sc[p] < min_score:
                    for col in columns:
                        col[p] = col[n - 1]
                    n -= 1
                    p -= 1
                p += 1
            i += 1
    return torch.tensor(dets, dtype=torch.float32).reshape(-1, 5), \
        torch.tensor(inds[:n], dtype=torch.long)


def assert_same(dets, inds, expected_dets, expected_inds):
    assert inds.tolist() == expected_inds.tolist()
    torch.testing.assert_close(dets, expected_dets, rtol=0, atol=0,
                               equal_nan=True)


@pytest.mark.parametrize('method', list(METHODS))
@pytest.mark.parametrize('offset', [0, 1])
def test_soft_nms_equals_kernel_loop(method, offset, monkeypatch):
    """Clusters of boxes with scores on steps of 0.05 (many ties), through
    the precomputed weights and the row-by-row path."""
    from mmcv.ops import soft_nms
    for seed, (iou, sigma, min_score) in enumerate([(0.3, 0.5, 1e-3),
                                                    (0.6, 0.2, 0.1)]):
        boxes, scores = detections(100, seed)
        boxes = boxes.round() if offset else boxes
        expected = kernel_loop(boxes, scores, iou, sigma, min_score,
                               METHODS[method], offset)
        assert 10 < len(expected[1]) < len(boxes)  # some boxes dropped
        for full in (ours._FULL, 0):
            monkeypatch.setattr(ours, '_FULL', full)
            dets, inds = soft_nms(boxes, scores, iou, sigma, min_score,
                                  method, offset)
            assert_same(dets, inds, *expected)


def test_soft_nms_ties_identical_boxes():
    """Equal scores: the first box in the kernel's running order wins; the
    gaussian decay of identical boxes is exp(-1 / sigma) per step."""
    from mmcv.ops import soft_nms
    boxes = torch.tensor([[0., 0., 10., 10.]] * 3)
    scores = torch.full((3, ), 0.5)
    dets, inds = soft_nms(boxes, scores, 0.3, sigma=0.5, min_score=0,
                          method='gaussian')
    assert inds.tolist() == [0, 1, 2]
    decay = math.exp(-2)
    torch.testing.assert_close(dets[:, 4],
                               torch.tensor([.5, .5 * decay, .5 * decay**2]))
    # Linear: identical boxes fall to 0 and are dropped.
    dets, inds = soft_nms(boxes, scores, 0.3, min_score=1e-3)
    assert inds.tolist() == [0]
    # Several identical groups and tied scores, with drops.
    boxes = torch.cat([boxes.repeat(4, 1), boxes.repeat(4, 1) + 5,
                       boxes.repeat(4, 1) + 30])
    scores = torch.tensor([.5, .7, .7, .5] * 9)
    for method, code in METHODS.items():
        for min_score in (0., 0.05):
            assert_same(*soft_nms(boxes, scores, 0.3, 0.5, min_score,
                                  method),
                        *kernel_loop(boxes, scores, 0.3, 0.5, min_score, code,
                                     0))


def test_soft_nms_iou_at_threshold():
    """IoU exactly 0.5 (an intersection of 5 over a union of 10) decays at
    ``iou_threshold=0.5`` (``>=``) and not just above it."""
    from mmcv.ops import soft_nms
    boxes = torch.tensor([[0., 0., 10., 1.], [0., 0., 5., 1.]])
    scores = torch.tensor([0.9, 0.8])
    _, inds = soft_nms(boxes, scores, 0.5, min_score=1e-3, method='naive')
    assert inds.tolist() == [0]
    dets, inds = soft_nms(boxes, scores, 0.5, min_score=0., method='naive')
    assert inds.tolist() == [0, 1] and dets[1, 4] == 0  # 0 < 0 is false
    dets, _ = soft_nms(boxes, scores, 0.5, method='linear')
    assert dets[1, 4] == np.float32(0.8) * np.float32(0.5)
    for method in ('naive', 'linear'):
        dets, _ = soft_nms(boxes, scores, 0.5001, method=method)
        assert dets[:, 4].tolist() == scores.tolist()
    # IoU 7 / 10 is float(0.7), a little below 0.7: the threshold and
    # min_score are C floats too, so it decays, and a score of float(0.7)
    # is not below min_score=0.7.
    boxes7 = torch.tensor([[0., 0., 10., 1.], [0., 0., 7., 1.],
                           [20., 0., 30., 1.]])
    dets, inds = soft_nms(boxes7, torch.tensor([0.9, 0.8, 0.7]), 0.7,
                          min_score=0.7, method='naive')
    assert inds.tolist() == [0, 2]
    # offset=1: widths 11 and 6 over 11: IoU 6/11, below 0.55.
    dets, _ = soft_nms(boxes, scores, 0.55, method='naive', offset=1)
    assert dets[:, 4].tolist() == scores.tolist()
    # Thresholds equal to a pair's float32 IoU (as the kernel computes it)
    # suppress it; in float64 about half of them would fall below.
    g = torch.Generator().manual_seed(0)
    for offset in (0, 1):
        for _ in range(20):
            corner = torch.rand(2, 2, generator=g) * 4
            boxes = torch.cat([corner, corner + 5 + torch.rand(
                2, 2, generator=g) * 10], 1)
            rows = [[np.float32(v) for v in row] for row in boxes.tolist()]
            off = np.float32(offset)
            for row in rows:
                row.append((row[2] - row[0] + off) * (row[3] - row[1] + off))
            iou = float(kernel_iou(*rows, off))
            assert iou > 0
            dets, inds = soft_nms(boxes, scores, iou, min_score=0,
                                  method='naive', offset=offset)
            assert inds.tolist() == [0, 1] and dets[1, 4] == 0


def test_soft_nms_empty_single_and_numpy():
    from mmcv.ops import soft_nms
    dets, inds = soft_nms(torch.zeros(0, 4), torch.zeros(0))
    assert dets.shape == (0, 5) and inds.shape == (0, )
    # One box is kept whatever its score: only later boxes are dropped.
    dets, inds = soft_nms(torch.tensor([[1., 2., 3., 4.]]),
                          torch.tensor([1e-5]))
    assert inds.tolist() == [0]
    assert torch.equal(dets, torch.tensor([[1., 2., 3., 4., 1e-5]]))
    boxes, scores = detections(60, 3)
    dets, inds = soft_nms(boxes.numpy(), scores.numpy(), method='gaussian')
    assert isinstance(dets, np.ndarray) and isinstance(inds, np.ndarray)
    expected_dets, expected_inds = kernel_loop(boxes, scores, 0.3, 0.5, 1e-3,
                                               2, 0)
    assert_same(torch.from_numpy(dets), torch.from_numpy(inds),
                expected_dets, expected_inds)


def test_soft_nms_leaves_inputs_and_later_rows():
    boxes, scores = detections(80, 4)
    boxes0, scores0 = boxes.clone(), scores.clone()
    dets = torch.full((80, 5), -7.)
    inds = ours.softnms(boxes, scores, dets, iou_threshold=0.3, sigma=0.5,
                        min_score=0.2, method=1, offset=0)
    assert torch.equal(boxes, boxes0) and torch.equal(scores, scores0)
    assert 0 < len(inds) < 80
    assert (dets[len(inds):] == -7).all()
    assert_same(dets[:len(inds)], inds,
                *kernel_loop(boxes, scores, 0.3, 0.5, 0.2, 1, 0))


def test_soft_nms_nan_scores():
    """Identical zero-size boxes have IoU 0 / 0: the gaussian weight makes
    their scores NaN, which the kernel's scan never picks unless first."""
    from mmcv.ops import soft_nms
    boxes = torch.tensor([[5., 5., 5., 9.]] * 3 + [[0., 0., 4., 4.]] * 2 +
                         [[5., 5., 5., 9.]])
    scores = torch.tensor([0.9, 0.3, 0.2, 0.8, 0.6, 0.1])
    dets, inds = soft_nms(boxes, scores, method='gaussian')
    expected = kernel_loop(boxes, scores, 0.3, 0.5, 1e-3, 2, 0)
    assert dets[:, 4].isnan().any()
    assert_same(dets, inds, *expected)


def test_gaussian_weight_is_libm_expf():
    """The gaussian weight's exp is the C library's expf to the bit (a
    float64 exp rounded to float32 is not: it differs a few times in
    10 000)."""
    g = torch.Generator().manual_seed(0)
    x = torch.cat([-torch.rand(20000, generator=g) * 4,
                   -torch.rand(5000, generator=g) * 110,
                   torch.tensor([0., -0., -88., -103.9, -104., -1e30,
                                 -math.inf, 88.7, 89., math.inf, math.nan])])
    expected = torch.tensor([expf(v) for v in x.tolist()])
    torch.testing.assert_close(ours._expf(x), expected, rtol=0, atol=0,
                               equal_nan=True)
    assert not torch.equal(x.double().exp().float()[:25000],
                           expected[:25000])


def test_batched_soft_nms():
    """mmdet's ``nms=dict(type='soft_nms')``: classes apart by an offset
    (one call) or one call per class (``split_thr``)."""
    from mmcv.ops import batched_nms
    boxes, scores = detections(160, 5)
    idxs = torch.randint(0, 3, (160, ),
                         generator=torch.Generator().manual_seed(0))
    cfg = dict(type='soft_nms', iou_threshold=0.5, method='gaussian',
               min_score=0.05)
    dets, keep = batched_nms(boxes, scores, idxs, cfg)
    shifted = boxes + (idxs.float() * (boxes.max() + 1))[:, None]
    expected_dets, expected_keep = kernel_loop(shifted, scores, 0.5, 0.5,
                                               0.05, 2, 0)
    assert keep.tolist() == expected_keep.tolist()
    assert torch.equal(dets[:, :4], boxes[keep])
    assert torch.equal(dets[:, 4], expected_dets[:, 4])

    dets, keep = batched_nms(boxes, scores, idxs, dict(cfg, split_thr=10))
    expected = set()
    for c in range(3):
        members = (idxs == c).nonzero()[:, 0]
        d, k = kernel_loop(shifted[members], scores[members], 0.5, 0.5,
                           0.05, 2, 0)
        expected |= set(zip(members[k].tolist(), d[:, 4].tolist()))
    assert set(zip(keep.tolist(), dets[:, 4].tolist())) == expected
    assert (dets[1:, 4] <= dets[:-1, 4]).all()
    assert torch.equal(dets[:, :4], boxes[keep])


def test_soft_nms_half_inputs():
    """Half inputs are computed in float32 (mmcv's kernel takes float32
    only) and ``dets`` is written in half."""
    from mmcv.ops import soft_nms
    boxes, scores = detections(60, 6)
    boxes, scores = boxes.half(), scores.half()
    dets, inds = soft_nms(boxes, scores, 0.4, method='linear')
    expected_dets, expected_inds = kernel_loop(boxes.float(), scores.float(),
                                               0.4, 0.5, 1e-3, 1, 0)
    assert dets.dtype == torch.half
    assert inds.tolist() == expected_inds.tolist()
    assert torch.equal(dets, expected_dets.half())


@pytest.mark.parametrize('device', DEVICES)
def test_softnms_device(device):
    """The op itself on ``device`` (mmcv's wrapper always runs it on CPU)."""
    boxes, scores = detections(120, 7)
    dets = torch.zeros(120, 5, device=device)
    inds = ours.softnms(boxes.to(device), scores.to(device), dets, 0.4, 0.5,
                        0.05, 2, 0)
    assert inds.device.type == device
    assert_same(dets[:len(inds)].cpu(), inds.cpu(),
                *kernel_loop(boxes, scores, 0.4, 0.5, 0.05, 2, 0))


def test_softnms_rejects_bad_arguments():
    boxes, scores = torch.rand(5, 4), torch.rand(5)
    good = dict(boxes=boxes, scores=scores, dets=torch.empty(5, 5),
                iou_threshold=0.3, sigma=0.5, min_score=1e-3, method=1,
                offset=0)
    for change, message in [(dict(boxes=torch.rand(5, 5)), r'boxes \(N, 4\)'),
                            (dict(scores=torch.rand(4)), r'scores \(N,\)'),
                            (dict(dets=torch.empty(5, 4)), r'dets buffer'),
                            (dict(method=3), 'method'),
                            (dict(offset=2), 'offset')]:
        with pytest.raises(ValueError, match=message):
            ours.softnms(**dict(good, **change))
