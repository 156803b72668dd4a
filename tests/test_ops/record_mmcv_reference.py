"""Record what mmcv 2.1.0's compiled CPU kernels compute, for the tests of
mmdist's torch/torchvision stand-ins (tests/test_ops/test_mmcv_reference.py).

Run it once in an environment with full mmcv (``MMDIST_MMCV=full make
install`` into a throwaway VENV), from the repository root:

    VENV/bin/python tests/test_ops/record_mmcv_reference.py

It writes tests/test_ops/data/mmcv_2.1.0_cpu.pt: for each case its seeded
inputs and mmcv's outputs and gradients (float32, CPU). The inputs are
stored too, so the tests do not depend on the generator of this torch.
mmcv has no CPU kernel for RoIPool, the focal losses, multi-scale
deformable attention, CARAFE, masked convolution or deformable RoI
pooling: those stand-ins are tested against mmdet's Python focal loss and
against the formulas (test_roi_pool.py, test_focal_loss.py, ...).
"""
import os
import sys
from typing import Dict, List

import torch

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'data',
                   'mmcv_2.1.0_cpu.pt')


def detections(n: int, seed: int, tie_step: float = 0.05):
    """Clusters of overlapping boxes, scores rounded so that many tie."""
    g = torch.Generator().manual_seed(seed)
    centres = torch.rand(max(n // 20, 1), 2, generator=g) * 600
    centre = centres.repeat_interleave(20, 0)[:n] + torch.randn(
        n, 2, generator=g) * 8
    wh = 20 + torch.rand(n, 2, generator=g) * 80
    boxes = torch.cat([centre - wh / 2, centre + wh / 2], 1)
    scores = (torch.rand(n, generator=g) / tie_step).round() * tie_step
    return boxes, scores


def nms_cases() -> List[Dict]:
    from mmcv.ops import nms
    cases = []
    for seed in range(3):
        boxes, scores = detections(600, seed)
        for offset in (0, 1):
            b = boxes.round() if offset else boxes
            for iou in (0.3, 0.5, 0.7):
                keep = nms(b, scores, iou, offset=offset)[1]
                cases.append(dict(boxes=b, scores=scores, iou=iou,
                                  offset=offset, keep=keep))
    # Ties: identical boxes and scores; the sort order alone decides.
    boxes = torch.tensor([[0., 0., 10., 10.]] * 8 + [[50., 50., 60., 60.]] * 8)
    scores = torch.full((16, ), 0.5)
    cases.append(dict(boxes=boxes, scores=scores, iou=0.5, offset=0,
                      keep=nms(boxes, scores, 0.5)[1]))
    # IoU exactly at the threshold (kept) and a hair above it (dropped).
    for iou in (0.3, 0.5, 0.7):
        inter = iou * 10
        boxes = torch.tensor([[0., 0., 10., 1.], [0., 0., inter, 1.],
                              [20., 0., 30., 1.],
                              [20., 0., 20 + inter + 0.01, 1.]])
        scores = torch.tensor([0.9, 0.8, 0.7, 0.6])
        cases.append(dict(boxes=boxes, scores=scores, iou=iou, offset=0,
                          keep=nms(boxes, scores, iou)[1]))
    return cases


def batched_nms_cases() -> List[Dict]:
    from mmcv.ops import batched_nms
    cases = []
    for seed, split_thr in ((0, 10000), (1, 100)):  # one pass / per class
        boxes, scores = detections(800, seed)
        g = torch.Generator().manual_seed(100 + seed)
        idxs = torch.randint(0, 5, (len(boxes), ), generator=g)
        cfg = dict(type='nms', iou_threshold=0.5, split_thr=split_thr)
        dets, keep = batched_nms(boxes, scores, idxs, cfg)
        cases.append(dict(boxes=boxes, scores=scores, idxs=idxs,
                          split_thr=split_thr, dets=dets, keep=keep))
    return cases


def roi_align_cases() -> List[Dict]:
    from mmcv.ops import roi_align
    g = torch.Generator().manual_seed(0)
    feats = torch.randn(2, 8, 20, 24, generator=g)
    xy = torch.rand(30, 2, generator=g) * 36
    wh = 1 + torch.rand(30, 2, generator=g) * 12
    batch = torch.randint(0, 2, (30, 1), generator=g).float()
    rois = torch.cat([batch, xy, xy + wh], 1)
    grad_out = torch.randn(30, 8, 7, 7, generator=g)
    cases = []
    for aligned in (True, False):
        for sampling_ratio in (0, 2):
            x = feats.clone().requires_grad_(True)
            out = roi_align(x, rois, (7, 7), 0.5, sampling_ratio, 'avg',
                            aligned)
            out.backward(grad_out)
            cases.append(dict(input=feats, rois=rois, grad_out=grad_out,
                              aligned=aligned, sampling_ratio=sampling_ratio,
                              output=out.detach(), grad_input=x.grad))
    return cases


def deform_conv_cases() -> List[Dict]:
    from mmcv.ops import deform_conv2d, modulated_deform_conv2d
    cases = []
    settings = [  # groups, deform_groups, stride, padding, dilation
        (1, 1, 1, 1, 1), (2, 2, 1, 1, 1), (1, 2, 2, 1, 1), (2, 1, 1, 2, 2)
    ]
    for i, (groups, dgroups, stride, padding, dilation) in enumerate(
            settings):
        g = torch.Generator().manual_seed(i)
        x = torch.randn(2, 4, 9, 10, generator=g)
        weight = torch.randn(6, 4 // groups, 3, 3, generator=g) * 0.3
        bias = torch.randn(6, generator=g)
        out_h = (9 + 2 * padding - dilation * 2 - 1) // stride + 1
        out_w = (10 + 2 * padding - dilation * 2 - 1) // stride + 1
        offset = torch.randn(2, 2 * dgroups * 9, out_h, out_w,
                             generator=g) * 2
        mask = torch.rand(2, dgroups * 9, out_h, out_w, generator=g)
        grad_out = torch.randn(2, 6, out_h, out_w, generator=g)
        conf = dict(groups=groups, deform_groups=dgroups, stride=stride,
                    padding=padding, dilation=dilation)

        leaves = [t.clone().requires_grad_(True) for t in (x, offset, weight)]
        out = deform_conv2d(leaves[0], leaves[1], leaves[2], stride, padding,
                            dilation, groups, dgroups)
        out.backward(grad_out)
        cases.append(dict(
            kind='v1', input=x, offset=offset, weight=weight,
            grad_out=grad_out, output=out.detach(),
            grads=[t.grad for t in leaves], **conf))

        leaves = [t.clone().requires_grad_(True)
                  for t in (x, offset, mask, weight, bias)]
        out = modulated_deform_conv2d(*leaves, stride, padding, dilation,
                                      groups, dgroups)
        out.backward(grad_out)
        cases.append(dict(
            kind='v2', input=x, offset=offset, mask=mask, weight=weight,
            bias=bias, grad_out=grad_out, output=out.detach(),
            grads=[t.grad for t in leaves], **conf))
    return cases


def deform_conv_border_cases() -> List[Dict]:
    """Zero offsets with padding (every layer's start: the border taps
    sample exactly on h == -1 or w == -1) and whole-pixel offsets (taps on
    and past every border), DCN v1 and v2, with every gradient."""
    from mmcv.ops import deform_conv2d, modulated_deform_conv2d
    cases = []
    for kind, offsets in (('v1', 'zero'), ('v2', 'zero'),
                          ('v1', 'whole pixels'), ('v2', 'whole pixels')):
        g = torch.Generator().manual_seed(len(cases))
        x = torch.randn(2, 4, 7, 8, generator=g)
        weight = torch.randn(5, 4, 3, 3, generator=g) * 0.3
        bias = torch.randn(5, generator=g)
        offset = torch.zeros(2, 18, 7, 8) if offsets == 'zero' else \
            torch.randint(-2, 3, (2, 18, 7, 8), generator=g).float()
        mask = torch.rand(2, 9, 7, 8, generator=g)
        grad_out = torch.randn(2, 5, 7, 8, generator=g)
        if kind == 'v1':
            inputs = [x, offset, weight]
            fn = lambda x, o, w: deform_conv2d(x, o, w, 1, 1)  # noqa: E731
        else:
            inputs = [x, offset, mask, weight, bias]
            fn = lambda *a: modulated_deform_conv2d(*a, 1, 1)  # noqa: E731
        leaves = [t.clone().requires_grad_(True) for t in inputs]
        out = fn(*leaves)
        out.backward(grad_out)
        cases.append(dict(kind=kind, offsets=offsets, inputs=inputs,
                          grad_out=grad_out, output=out.detach(),
                          grads=[t.grad for t in leaves]))
    return cases


def dyhead_dcn_cases() -> List[Dict]:
    """DyHead's call: offsets and mask predicted on one level (a slice and
    a sigmoid of one conv's output) drive the DCNv2 of the next coarser
    level, whose output is half as large; mmcv reads each image's buffer
    with the output's geometry. Gradients down to the predicted tensor."""
    from mmcv.ops import modulated_deform_conv2d
    cases = []
    for size in ((10, 12), (9, 13)):  # even, and odd (ceil) levels
        g = torch.Generator().manual_seed(10 + len(cases))
        coarse = [(s + 1) // 2 for s in size]
        x = torch.randn(2, 4, *coarse, generator=g)
        weight = torch.randn(5, 4, 3, 3, generator=g) * 0.3
        bias = torch.randn(5, generator=g)
        predicted = torch.randn(2, 27, *size, generator=g)
        grad_out = torch.randn(2, 5, *coarse, generator=g)
        leaves = [t.clone().requires_grad_(True)
                  for t in (x, predicted, weight, bias)]
        x_, p_, w_, b_ = leaves
        out = modulated_deform_conv2d(x_, p_[:, :18], p_[:, 18:].sigmoid(),
                                      w_, b_, 1, 1)
        out.backward(grad_out)
        cases.append(dict(inputs=[x, predicted, weight, bias],
                          grad_out=grad_out, output=out.detach(),
                          grads=[t.grad for t in leaves]))
    return cases


def psamask_cases() -> List[Dict]:
    """Both modes, odd and even masks, masks smaller and larger than the
    map (PSANet's 2H - 1 x 2W - 1), with the input gradient."""
    from mmcv.ops import PSAMask
    cases = []
    for psa_type in ('collect', 'distribute'):
        for map_size, mask_size in (((6, 7), (3, 3)), ((6, 7), (4, 2)),
                                    ((5, 6), (9, 11)), ((4, 5), (8, 6))):
            g = torch.Generator().manual_seed(len(cases))
            x = torch.randn(2, mask_size[0] * mask_size[1], *map_size,
                            generator=g)
            grad_out = torch.randn(2, map_size[0] * map_size[1], *map_size,
                                   generator=g)
            leaf = x.clone().requires_grad_(True)
            out = PSAMask(psa_type, mask_size)(leaf)
            out.backward(grad_out)
            cases.append(dict(psa_type=psa_type, mask_size=mask_size,
                              input=x, grad_out=grad_out,
                              output=out.detach(), grad_input=leaf.grad))
    return cases


def softnms_cases() -> List[Dict]:
    """Clustered boxes with tied scores, the three methods, offsets 0 and
    1, thresholds that drop boxes."""
    from mmcv.ops import soft_nms
    cases = []
    for seed in range(2):
        boxes, scores = detections(300, seed)
        for method in ('naive', 'linear', 'gaussian'):
            for offset in (0, 1):
                b = boxes.round() if offset else boxes
                for iou, sigma, min_score in ((0.3, 0.5, 1e-3),
                                              (0.5, 0.1, 0.1)):
                    dets, inds = soft_nms(b, scores, iou, sigma, min_score,
                                          method, offset)
                    cases.append(dict(boxes=b, scores=scores, iou=iou,
                                      sigma=sigma, min_score=min_score,
                                      method=method, offset=offset,
                                      dets=dets, inds=inds))
    return cases


def nms_match_cases() -> List[Dict]:
    """Groups of clustered boxes with tied scores (the sort order decides)."""
    from mmcv.ops import nms_match
    cases = []
    for seed in range(3):
        boxes, scores = detections(400, seed)
        for iou in (0.3, 0.5, 0.7):
            dets = torch.cat([boxes, scores[:, None]], 1)
            groups = nms_match(dets, iou)
            cases.append(dict(dets=dets, iou=iou,
                              groups=[g.tolist() for g in groups]))
    return cases


def bbox_overlaps_cases() -> List[Dict]:
    """IoU and IoF, aligned or not, offsets 0 and 1, with empty and
    degenerate boxes."""
    from mmcv.ops import bbox_overlaps
    g = torch.Generator().manual_seed(0)
    xy = torch.rand(60, 2, generator=g) * 50
    boxes = torch.cat([xy, xy + torch.rand(60, 2, generator=g) * 30], 1)
    boxes[:3, 2:] = boxes[:3, :2]  # zero width and height
    boxes = boxes.round()  # touching edges, offset 1 matters
    first, second = boxes[:30], boxes[30:]
    cases = []
    for mode in ('iou', 'iof'):
        for aligned in (False, True):
            for offset in (0, 1):
                ious = bbox_overlaps(first, second, mode, aligned, offset)
                cases.append(dict(bboxes1=first, bboxes2=second, mode=mode,
                                  aligned=aligned, offset=offset, ious=ious))
    return cases


def main() -> None:
    import mmcv
    import mmcv._ext as ext
    if getattr(ext, 'MMDIST_STANDIN', False):
        sys.exit('mmcv._ext is mmdist\'s stand-in here: run this with a '
                 'compiled mmcv (MMDIST_MMCV=full make install)')
    torch.set_num_threads(1)
    data = dict(
        meta=dict(mmcv=mmcv.__version__, torch=str(torch.__version__),
                  compiler=ext.get_compiler_version()),
        nms=nms_cases(), batched_nms=batched_nms_cases(),
        roi_align=roi_align_cases(), deform_conv=deform_conv_cases(),
        deform_conv_border=deform_conv_border_cases(),
        dyhead_dcn=dyhead_dcn_cases(), psamask=psamask_cases(),
        softnms=softnms_cases(), nms_match=nms_match_cases(),
        bbox_overlaps=bbox_overlaps_cases())
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    tmp = OUT + '.tmp'
    torch.save(data, tmp)
    os.replace(tmp, OUT)
    print(f'wrote {OUT} ({os.path.getsize(OUT) / 1024:.0f} KiB) with mmcv '
          f'{mmcv.__version__}, torch {torch.__version__}')


if __name__ == '__main__':
    main()
