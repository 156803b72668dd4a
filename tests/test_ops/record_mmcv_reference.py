"""Record what mmcv 2.1.0's compiled CPU kernels compute, for the tests of
mmdist's torch/torchvision stand-ins (tests/test_ops/test_mmcv_reference.py).

Run it once in an environment with full mmcv (``MMDIST_MMCV=full make
install`` into a throwaway VENV), from the repository root:

    VENV/bin/python tests/test_ops/record_mmcv_reference.py

It writes tests/test_ops/data/mmcv_2.1.0_cpu.pt: for each case its seeded
inputs and mmcv's outputs and gradients (float32, CPU). The inputs are
stored too, so the tests do not depend on the generator of this torch.
mmcv has no CPU kernel for RoIPool, the focal losses or multi-scale
deformable attention: those stand-ins are tested against mmdet's Python
focal loss and against the formulas (test_roi_pool.py, test_focal_loss.py,
test_ms_deform_attn.py).
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
        roi_align=roi_align_cases(), deform_conv=deform_conv_cases())
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    tmp = OUT + '.tmp'
    torch.save(data, tmp)
    os.replace(tmp, OUT)
    print(f'wrote {OUT} ({os.path.getsize(OUT) / 1024:.0f} KiB) with mmcv '
          f'{mmcv.__version__}, torch {torch.__version__}')


if __name__ == '__main__':
    main()
