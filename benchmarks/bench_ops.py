"""mmcv's compiled CPU kernels against mmdist's torch/torchvision stand-ins,
called with the same ``_ext`` arguments on the same inputs.

- NMS at 1,000 and 10,000 clustered boxes (IoU 0.5);
- RoIAlign at Faster R-CNN's size: 512 RoIs x 256 channels on a
  200 x 336 map (P2 of a 1333 x 800 image), 7 x 7, forward and backward;
- deformable convolution v1 and v2: 3 x 3, 64 -> 64 channels, 2 x 64 x 64,
  forward and backward;
- the sigmoid focal loss over 20,000 anchors x 80 classes, forward and
  backward;
- PSANet's mask (collect and distribute, forward and backward), soft-NMS
  (linear and gaussian), NMS matching and box overlaps: the ops of the
  zoo's rarer families that mmcv 2.1 has CPU kernels for (CARAFE, masked
  convolution and deformable RoI pooling have CUDA kernels only);
- the interpreter start-up with and without mmdist's ``.pth`` hook.

The kernels need full mmcv: run it in an environment made with
``MMDIST_MMCV=full make install`` (VENV=...), with this checkout first on
the path. With mmcv-lite only the stand-ins are timed.

Run: PYTHONPATH=. python benchmarks/bench_ops.py [--repeat 5] [--threads 2]
"""
import argparse
import os
import statistics
import subprocess
import sys
import time
from typing import Callable, Dict, List, Optional, Tuple

import torch

from mmdist.ops.ext import OPS


def detections(n: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    centre = torch.rand(n // 20, 2, generator=g).repeat_interleave(20, 0)
    centre = centre * 1000 + torch.randn(n, 2, generator=g) * 8
    wh = 20 + torch.rand(n, 2, generator=g) * 80
    return (torch.cat([centre - wh / 2, centre + wh / 2], 1),
            torch.rand(n, generator=g))


def nms_case(n: int) -> Callable[[Callable], None]:
    boxes, scores = detections(n)
    return lambda nms: nms(boxes, scores, iou_threshold=0.5, offset=0)


def roi_align_cases() -> Dict[str, Callable[[Dict], None]]:
    g = torch.Generator().manual_seed(0)
    feats = torch.randn(1, 256, 200, 336, generator=g)
    xy = torch.rand(512, 2, generator=g) * 1100
    wh = 16 + torch.rand(512, 2, generator=g) * 200
    rois = torch.cat([torch.zeros(512, 1), xy, xy + wh], 1)
    out = feats.new_empty(512, 256, 7, 7)
    grad_out = torch.randn(512, 256, 7, 7, generator=g)
    empty = feats.new_empty(0)
    args = dict(aligned_height=7, aligned_width=7, spatial_scale=0.25,
                sampling_ratio=0, pool_mode=1, aligned=True)

    def forward(ops):
        ops['roi_align_forward'](feats, rois, out, empty, empty, **args)

    def backward(ops):
        grad_in = torch.zeros_like(feats)
        ops['roi_align_backward'](grad_out, rois, empty, empty, grad_in,
                                  **args)
    return {'RoIAlign forward (512 RoIs x 256 ch)': forward,
            'RoIAlign backward (512 RoIs x 256 ch)': backward}


def deform_conv_cases() -> Dict[str, Callable[[Dict], None]]:
    from mmcv.ops import deform_conv2d, modulated_deform_conv2d
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 64, 64, 64, generator=g)
    weight = torch.randn(64, 64, 3, 3, generator=g) * 0.05
    bias = torch.randn(64, generator=g)
    offset = torch.randn(2, 18, 64, 64, generator=g)
    mask = torch.rand(2, 9, 64, 64, generator=g)

    def run(fn, inputs, backward):
        # Through mmcv's Function, so that both sides get its buffers.
        def step(ops):
            if not backward:
                with torch.no_grad():
                    fn(*inputs)
                return
            leaves = [t.clone().requires_grad_(True) for t in inputs]
            fn(*leaves).sum().backward()
        return step

    def v1(a, o, w):
        return deform_conv2d(a, o, w, 1, 1)

    def v2(a, o, m, w, b):
        return modulated_deform_conv2d(a, o, m, w, b, 1, 1)
    size = '(2 x 64 ch x 64 x 64)'
    return {
        f'DCNv1 forward {size}': run(v1, [x, offset, weight], False),
        f'DCNv1 fwd + bwd {size}': run(v1, [x, offset, weight], True),
        f'DCNv2 forward {size}': run(v2, [x, offset, mask, weight, bias],
                                     False),
        f'DCNv2 fwd + bwd {size}': run(v2, [x, offset, mask, weight, bias],
                                       True),
    }


def wrapper_cases() -> Dict[str, Callable[[Dict], None]]:
    """Ops that mmcv 2.1 has CPU kernels for, through mmcv's wrappers (the
    ops in ``mmcv._ext`` are swapped, see :class:`Swap`): PSANet's mask at
    its Cityscapes size (97 x 97 windows over a 32 x 64 map, after the
    head's shrink), soft-NMS, NMS matching (PISA) and box overlaps."""
    from mmcv.ops import PSAMask, bbox_overlaps, nms_match, soft_nms
    g = torch.Generator().manual_seed(0)
    psa = torch.randn(2, 97 * 97, 32, 64, generator=g)
    boxes, scores = detections(1000)
    boxes_2k, scores_2k = detections(2000, seed=1)
    dets = torch.cat([boxes_2k, scores_2k[:, None]], 1)

    def psamask(kind):
        def step(ops):
            x = psa.clone().requires_grad_(True)
            PSAMask(kind, (97, 97))(x).sum().backward()
        return step

    def softnms(method):
        return lambda ops: soft_nms(boxes, scores, 0.3, 0.5, 1e-3, method)
    return {
        'PSAMask collect fwd + bwd (2 x 97*97 x 32 x 64)':
        psamask('collect'),
        'PSAMask distribute fwd + bwd (2 x 97*97 x 32 x 64)':
        psamask('distribute'),
        'soft-NMS linear, 1,000 boxes': softnms('linear'),
        'soft-NMS gaussian, 1,000 boxes': softnms('gaussian'),
        'nms_match, 2,000 boxes (IoU 0.5)':
        lambda ops: nms_match(dets, 0.5),
        'bbox_overlaps 1,000 x 1,000 (IoU)':
        lambda ops: bbox_overlaps(boxes, boxes_2k[:1000]),
    }


def focal_case() -> Tuple[Callable[[Dict], None], Callable[[], None]]:
    """The stand-in, and mmdet's ``py_sigmoid_focal_loss``: what mmdet runs
    on CPU, where mmcv has no kernel for it."""
    import torch.nn.functional as F
    from mmdet.models.losses.focal_loss import py_sigmoid_focal_loss
    g = torch.Generator().manual_seed(0)
    pred = torch.randn(20000, 80, generator=g)
    target = torch.randint(0, 81, (20000, ), generator=g)
    out = torch.empty_like(pred)
    empty = pred.new_empty(0)

    def ours(ops):
        ops['sigmoid_focal_loss_forward'](pred, target, empty, out, 2.0, 0.25)
        grad = torch.empty_like(pred)
        ops['sigmoid_focal_loss_backward'](pred, target, empty, grad, 2.0,
                                           0.25)

    def mmdet():
        x = pred.clone().requires_grad_(True)
        onehot = F.one_hot(target, 81)[:, :80].float()
        py_sigmoid_focal_loss(x, onehot, reduction='none').sum().backward()
    return ours, mmdet


def median_ms(fn: Callable[[], None], repeat: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


class Swap:
    """Puts ``ops`` into ``mmcv._ext`` for the block, so that mmcv's own
    Python wrappers (deformable convolution) call them."""

    def __init__(self, ext, ops: Dict[str, Callable]) -> None:
        self.ext, self.ops, self.saved = ext, ops, {}

    def __enter__(self):
        for name, op in self.ops.items():
            self.saved[name] = getattr(self.ext, name)
            setattr(self.ext, name, op)

    def __exit__(self, *exc):
        for name, op in self.saved.items():
            setattr(self.ext, name, op)


def startup_ms(repeat: int) -> Dict[str, float]:
    """``python -c pass`` in this environment, and the part of it that the
    ``.pth`` hook's import takes (``-X importtime``, self time)."""
    total, own = [], []
    for _ in range(repeat):
        start = time.perf_counter()
        err = subprocess.run([sys.executable, '-X', 'importtime', '-c',
                              'pass'], capture_output=True, text=True,
                             check=True).stderr
        total.append(time.perf_counter() - start)
        own += [int(line.split('|')[0].split(':')[1]) for line in
                err.splitlines() if line.rstrip().endswith('_mmdist_mmcv_ext')]
    return {'python -c pass (whole start-up)': statistics.median(total) * 1e3,
            'of which the hook (_mmdist_mmcv_ext import)':
            statistics.median(own) / 1e3 if own else float('nan')}


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--repeat', type=int, default=5)
    parser.add_argument('--threads', type=int, default=2)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    import mmcv
    import mmcv._ext as ext
    compiled = not getattr(ext, 'MMDIST_STANDIN', False)
    kernels = {}
    for name in OPS if compiled else ():
        op = getattr(ext, name, None)
        if op is not None:
            kernels[name] = getattr(op, 'kernel', op)  # past mmdist's router
    build = ('compiled, ' + ext.get_compiler_version()) if compiled else 'lite'
    print(f'torch {torch.__version__}, mmcv {mmcv.__version__} ({build}), '
          f'{args.threads} threads, median of {args.repeat}')

    cases = {'NMS 1,000 boxes': nms_case(1000),
             'NMS 10,000 boxes': nms_case(10000)}
    cases = {k: (lambda f: lambda ops: f(ops['nms']))(v)
             for k, v in cases.items()}
    cases.update(roi_align_cases())
    cases.update(deform_conv_cases())
    cases.update(wrapper_cases())
    focal_ours, focal_mmdet = focal_case()

    print('\n| op | mmcv kernel (ms) | mmdist stand-in (ms) | ratio |')
    print('|---|---|---|---|')
    ours = median_ms(lambda: focal_ours(OPS), args.repeat)
    theirs = median_ms(focal_mmdet, args.repeat)
    print(f'| sigmoid focal loss fwd + bwd (20k x 80; no mmcv CPU kernel: '
          f'against mmdet\'s py_sigmoid_focal_loss) | {theirs:.1f} | '
          f'{ours:.1f} | {ours / theirs:.2f} |')
    for name, case in cases.items():
        with Swap(ext, {k: v for k, v in OPS.items() if k in kernels}
                  if compiled else {}):
            ours = median_ms(lambda: case(OPS), args.repeat)
        if compiled:
            with Swap(ext, kernels):
                theirs = median_ms(lambda: case(kernels), args.repeat)
            print(f'| {name} | {theirs:.1f} | {ours:.1f} | '
                  f'{ours / theirs:.2f} |')
        else:
            print(f'| {name} | - | {ours:.1f} | - |')

    print('\n| interpreter start-up | ms |')
    print('|---|---|')
    for name, value in startup_ms(max(args.repeat, 10)).items():
        print(f'| {name} | {value:.2f} |')
    print('\n(the hook is ' + ('' if any(
        os.path.exists(os.path.join(p, 'mmdist-mmcv-ext.pth'))
        for p in sys.path) else 'not ') + 'installed in this environment)')


if __name__ == '__main__':
    main()
