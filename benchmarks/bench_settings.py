"""Training-step time, images/s and peak memory of the paper's settings,
and what the teacher's forward costs.

For RetinaNet X101 -> R50, Cascade Mask R-CNN X101 -> Faster R-CNN R50,
DeepLabV3 R101 -> DeepLabV3 R18, -> PSPNet R18 and ImageNet ResNet-34 ->
ResNet-18 (the configs of configs/, random weights, generated inputs at
the stock sizes: COCO 1333 x 800, Cityscapes 512 x 1024 crops, ImageNet
224 x 224, 2 images), and beyond the paper two RetinaNet teachers
(X101-64x4d and R101) -> R50 (``retinanet_two_teachers``: what a second
teacher costs, and what the teacher options save of it) and mmyolo's
RTMDet-m -> RTMDet-s (``rtmdet_s_m``, 640 x 640), one training step
(forward, backward, SGD update through MMEngine's optimizer wrapper) of
each variant:

- ``student``: the student alone (the stock model);
- ``mmrazor``: MMRazor's stock SingleTeacherDistill with the same distiller
  (where it computes the same losses: not for the two-stage setting);
- ``mmdist``: mmdist's algorithm as configured (its teacher's BatchNorm
  folded, the default);
- ``kd``: mmyolo's own KD of the pair (``kd_s_rtmdet_m_neck_300e_coco.py``:
  MMRazor's FpnTeacherDistill, CWD on the neck's outputs), for
  ``rtmdet_s_m`` only;
- ``unfolded``: mmdist with ``teacher_fold_bn=False``;
- ``bf16``: mmdist with ``teacher_precision='bfloat16'``;
- ``channels_last``: mmdist with ``channels_last=True``;
- ``compiled``: mmdist with ``teacher_compile=True`` (its compilation, a
  minute or more on a CPU, is left to the warm-up steps);
- ``stream``: mmdist with ``teacher_stream=True`` (CUDA);
- ``inplace``: mmdist with MMRazor's ``module_inplace=True`` and
  ``teacher_module_inplace=True``: activations in place, as MMRazor's
  walk left them on torch 2.14 before mmdist's compat turned them off;

in float32 and, on a GPU, under AMP (MMEngine's AmpOptimWrapper, float16,
what ``tools/train.py --amp`` uses); each step also as a ratio of the
student's alone, and what its forward keeps for the backward pass (the
storages autograd saves, in MiB: on a CPU, where no peak is measured, the
activations' memory). ``--teacher-forward`` times the teacher's forward alone
(no gradients, eval mode), plain, folded, folded in channels-last and
folded and compiled. It also reports how far the distillation losses move
when the teacher runs in bfloat16 (max |difference| over the distillation
losses, float32 teacher against bfloat16 teacher, same weights and batch).

Run: python benchmarks/bench_settings.py [--device cuda] [--repeat 5]
     [--scale 1.0] [--settings retinanet,faster_rcnn,deeplabv3,pspnet,
     resnet18_in1k,retinanet_two_teachers,rtmdet_s_m]
     [--variants student,mmdist,...]
     [--teacher-forward] [--out DIR]
``--device cpu --scale 0.125`` is the test suite's smoke run.
"""
import argparse
import copy
import gc
import json
import math
import os
import os.path as osp
import statistics
import tempfile
import time
from typing import Dict, List, Optional

import torch
from mmengine.optim import AmpOptimWrapper, OptimWrapper

import mmdist  # noqa: F401
from mmdist.testing import (IMAGENET, RTMDET, SETTINGS, TWO_TEACHERS,
                            Setting, build_setting, make_batch,
                            setting_config)

ALL_SETTINGS = SETTINGS + (IMAGENET, TWO_TEACHERS, RTMDET)
#: variant -> (its label, build_setting's variant, mmdist's options).
VARIANTS = {
    'student': ('student alone', 'student', {}),
    'mmrazor': ('MMRazor SingleTeacherDistill', 'mmrazor', {}),
    'mmdist': ('mmdist', 'mmdist', {}),
    # The setting's kd_config: mmyolo's own KD of RTMDet-m -> RTMDet-s.
    'kd': ("mmyolo's KD (CWD on the neck)", 'kd', {}),
    'unfolded': ('mmdist, teacher unfolded', 'mmdist',
                 dict(teacher_fold_bn=False)),
    'bf16': ('mmdist, teacher bf16', 'mmdist',
             dict(teacher_precision='bfloat16')),
    'channels_last': ('mmdist, channels last', 'mmdist',
                      dict(channels_last=True)),
    'compiled': ('mmdist, teacher compiled', 'mmdist',
                 dict(teacher_compile=True)),
    'stream': ('mmdist, teacher stream', 'mmdist',
               dict(teacher_stream=True)),
    # MMRazor's module_inplace: activations left in place (mmdist's
    # compat turns them off, as MMRazor means to, by default).
    'inplace': ('mmdist, activations in place', 'mmdist',
                dict(module_inplace=True, teacher_module_inplace=True)),
}
DEFAULT_VARIANTS = 'student,mmrazor,mmdist,unfolded,bf16,channels_last'


def scaled(size, scale: float):
    """The stock size times ``scale``, in multiples of 32."""
    return tuple(max(32, int(round(s * scale / 32)) * 32) for s in size)


def sync(device: str) -> None:
    if device == 'cuda':
        torch.cuda.synchronize()


def saved_for_backward_mib(model, data: dict, wrapper) -> float:
    """What one training step's forward keeps for the backward pass: the
    distinct storages autograd saves (the activations), in MiB."""
    storages = {}

    def pack(tensor):
        storage = tensor.untyped_storage()
        storages[storage.data_ptr()] = storage.nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        model.train_step(copy.deepcopy(data), wrapper)
    return sum(storages.values()) / 2**20


def time_steps(model, data: dict, device: str, amp: bool, warmup: int,
               repeat: int) -> Dict[str, float]:
    """Median step time (s), peak GPU memory (MiB) of train_step and what
    its forward keeps for the backward pass (MiB)."""
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.SGD(params, lr=1e-5, momentum=0.9)
    wrapper = AmpOptimWrapper(optimizer=optimizer, loss_scale='dynamic') \
        if amp else OptimWrapper(optimizer=optimizer)
    for _ in range(warmup):
        model.train_step(copy.deepcopy(data), wrapper)
    if device == 'cuda':
        torch.cuda.reset_peak_memory_stats()
    times = []
    for _ in range(repeat):
        batch = copy.deepcopy(data)
        sync(device)
        start = time.perf_counter()
        model.train_step(batch, wrapper)
        sync(device)
        times.append(time.perf_counter() - start)
    peak = torch.cuda.max_memory_allocated() / 2**20 \
        if device == 'cuda' else float('nan')
    return dict(step_s=statistics.median(times), peak_mib=peak,
                saved_mib=saved_for_backward_mib(model, data, wrapper))


def distill_losses(model, data: dict) -> Dict[str, float]:
    """The distillation losses of one forward (fixed seed: the same RoIs)."""
    torch.manual_seed(0)
    with torch.no_grad():
        batch = model.data_preprocessor(copy.deepcopy(data), True)
        losses = model.loss(batch['inputs'], batch['data_samples'])
    return {k: float(v) for k, v in losses.items()
            if k.startswith('distill.loss')}


def reduced_teacher_drift(model, data: dict) -> Dict[str, float]:
    """Distillation losses with the teacher in float32 and in bfloat16."""
    dtypes = [info.dtype for info in model.teacher_infos]
    model.teacher_dtype = None
    full = distill_losses(model, data)
    model.teacher_dtype = torch.bfloat16
    reduced = distill_losses(model, data)
    for info, dtype in zip(model.teacher_infos, dtypes):
        info.dtype = dtype
    diffs = {k: abs(full[k] - reduced[k]) for k in full}
    worst = max(diffs, key=diffs.get)
    return dict(loss=worst, fp32=full[worst], bf16=reduced[worst],
                max_abs_diff=diffs[worst],
                max_rel_diff=max(d / max(abs(full[k]), 1e-12)
                                 for k, d in diffs.items()))


def teacher_files(setting: Setting, directory: str) -> dict:
    """Random teachers' weights, saved, as mmdist's options that load them
    (mmdist folds a teacher whose weights come from a file):
    ``teacher_ckpt``, or ``teachers`` with each teacher's ``ckpt``."""
    specs = setting_config(setting).model.get('teachers')
    names = list(specs) if specs else [None]
    paths = {name: osp.join(directory, f'{setting.name}_{name or "teacher"}'
                            '.pth') for name in names}
    if not all(osp.isfile(p) for p in paths.values()):
        torch.manual_seed(0)
        model = build_setting(setting, 'mmdist')
        for name, path in paths.items():
            teacher = model.teacher if name is None else model.teacher[name]
            torch.save(dict(state_dict=teacher.state_dict()), path)
    if not specs:
        return dict(teacher_ckpt=paths[None])
    return dict(teachers={name: dict(spec, ckpt=paths[name])
                          for name, spec in specs.items()})


def mmdist_options(options: dict, ckpt: dict) -> dict:
    """A variant's options with the teachers' files; with several
    teachers, a teacher precision goes to each teacher's own entry."""
    options = dict(options, **ckpt)
    precision = options.pop('teacher_precision', None)
    if precision is None:
        return options
    if 'teachers' not in options:
        return dict(options, teacher_precision=precision)
    options['teachers'] = {name: dict(spec, precision=precision)
                           for name, spec in options['teachers'].items()}
    return options


def teacher_forward_ms(model, data: dict, device: str, warmup: int,
                       repeat: int) -> float:
    """Median time of the teacher's forward alone (no gradients)."""
    batch = model.data_preprocessor(copy.deepcopy(data), True)
    inputs = batch['inputs']
    if model.channels_last:
        inputs = inputs.contiguous(memory_format=torch.channels_last)

    def forward():
        with torch.no_grad():
            if model._compiled_teacher:
                model._compiled_teacher(model, inputs, batch['data_samples'])
            else:
                model.teacher_forward(inputs, batch['data_samples'])
    for _ in range(warmup):
        forward()
    times = []
    for _ in range(repeat):
        sync(device)
        start = time.perf_counter()
        forward()
        sync(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


def bench_setting(setting: Setting, args, ckpt_dir: str) -> List[dict]:
    size = scaled(setting.image_size, args.scale)
    data = make_batch(setting, args.batch, size)
    modes = [False, True] if args.device == 'cuda' and not args.no_amp \
        else [False]
    ckpt = teacher_files(setting, ckpt_dir)
    rows, student_s = [], {}
    for key in args.variants:
        label, variant, options = VARIANTS[key]
        if variant == 'mmrazor' and not setting.stock_algorithm:
            continue  # its teacher would classify its own RoIs
        if variant == 'kd' and setting.kd_config is None:
            continue
        torch.manual_seed(0)
        if variant == 'mmdist':
            options = mmdist_options(options, ckpt)
        model = build_setting(setting, variant, image_size=size, **options)
        model.to(args.device)
        for amp in modes:
            result = time_steps(model, data, args.device, amp,
                                args.warmup + 2 * (key == 'compiled'),
                                args.repeat)
            precision = 'amp' if amp else 'fp32'
            if variant == 'student':
                student_s[precision] = result['step_s']
            ratio = result['step_s'] / student_s.get(precision, math.nan)
            rows.append(dict(setting=setting.name, variant=label,
                             precision=precision, size=f'{size[1]}x{size[0]}',
                             images_per_s=args.batch / result['step_s'],
                             vs_student=ratio, **result))
            print(f"{setting.name:13s} {label:30s} {precision:5s}"
                  f" {result['step_s'] * 1e3:9.1f} ms/step "
                  f"({ratio:5.2f}x the student) "
                  f"{rows[-1]['images_per_s']:7.2f} img/s "
                  f"{result['peak_mib']:9.0f} MiB peak, "
                  f"{result['saved_mib']:7.0f} MiB saved for backward",
                  flush=True)
        if key == 'bf16':
            drift = reduced_teacher_drift(model, data)
            rows.append(dict(setting=setting.name, drift=drift))
            print(f"{setting.name:13s} teacher bf16 vs fp32: "
                  f"{drift['loss']} {drift['fp32']:.6f} -> "
                  f"{drift['bf16']:.6f} (max |diff| over the distillation "
                  f"losses {drift['max_abs_diff']:.2e}, relative "
                  f"{drift['max_rel_diff']:.2e})", flush=True)
        del model
        gc.collect()
        if args.device == 'cuda':
            torch.cuda.empty_cache()
    if args.teacher_forward:
        rows += bench_teacher_forward(setting, args, data, size, ckpt)
    return rows


def bench_teacher_forward(setting: Setting, args, data: dict, size,
                          ckpt: dict) -> List[dict]:
    """The teacher's forward alone: plain, folded, folded in
    channels-last, folded and compiled (with ``--compile``)."""
    forms = [('plain', dict(teacher_fold_bn=False)), ('folded', {}),
             ('folded, channels last', dict(channels_last=True))]
    if 'compiled' in args.variants or args.compile_teacher_forward:
        forms.append(('folded, compiled', dict(teacher_compile=True)))
    rows, plain = [], None
    for form, options in forms:
        torch.manual_seed(0)
        model = build_setting(setting, 'mmdist', image_size=size,
                              **ckpt, **options)
        model.to(args.device).train()
        ms = teacher_forward_ms(model, data, args.device,
                                args.warmup + 2 * ('compile' in form),
                                args.repeat)
        plain = plain or ms
        rows.append(dict(setting=setting.name, teacher_forward=form,
                         ms=ms, speedup=plain / ms))
        print(f"{setting.name:13s} teacher forward, {form:24s} "
              f"{ms:9.1f} ms ({plain / ms:4.2f}x)", flush=True)
        del model
        gc.collect()
    return rows


def markdown(rows: List[dict], header: str) -> str:
    lines = [header, '',
             '| setting | variant | precision | input | ms/step | x student '
             '| images/s | peak GPU memory (MiB) | saved for backward (MiB) |',
             '|---|---|---|---|---|---|---|---|---|']
    for r in rows:
        if 'step_s' not in r:
            continue
        memory = '-' if r['peak_mib'] != r['peak_mib'] else \
            f"{r['peak_mib']:.0f}"
        memory += f" | {r['saved_mib']:.0f}"
        lines.append(f"| {r['setting']} | {r['variant']} | {r['precision']} "
                     f"| {r['size']} | {r['step_s'] * 1e3:.1f} | "
                     f"{r['vs_student']:.2f} | {r['images_per_s']:.2f} | "
                     f"{memory} |")
    forward = [r for r in rows if 'teacher_forward' in r]
    if forward:
        lines += ['', '| setting | teacher forward | ms | speed-up |',
                  '|---|---|---|---|']
        lines += [f"| {r['setting']} | {r['teacher_forward']} | "
                  f"{r['ms']:.1f} | {r['speedup']:.2f}x |" for r in forward]
    drifts = [r for r in rows if 'drift' in r]
    if drifts:
        lines += ['', '| setting | distillation loss | teacher fp32 | '
                  'teacher bf16 | max abs diff (all losses) | max rel diff |',
                  '|---|---|---|---|---|---|']
    for r in drifts:
        d = r['drift']
        lines.append(f"| {r['setting']} | {d['loss']} | {d['fp32']:.6f} "
                     f"| {d['bf16']:.6f} | {d['max_abs_diff']:.2e} | "
                     f"{d['max_rel_diff']:.2e} |")
    return '\n'.join(lines) + '\n'


def main(argv: Optional[List[str]] = None) -> List[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        '--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--settings',
                        default=','.join(s.name for s in ALL_SETTINGS))
    parser.add_argument(
        '--variants', default=None,
        help=f'comma-separated, of {",".join(VARIANTS)} (default '
        f'{DEFAULT_VARIANTS}, and stream on a GPU)')
    parser.add_argument('--teacher-forward', action='store_true',
                        help="also time the teacher's forward alone")
    parser.add_argument('--compile-teacher-forward', action='store_true',
                        help="also time the teacher's compiled forward")
    parser.add_argument('--scale', type=float, default=1.0,
                        help='input size relative to the stock one')
    parser.add_argument('--batch', type=int, default=2)
    parser.add_argument('--warmup', type=int, default=2)
    parser.add_argument('--repeat', type=int, default=5)
    parser.add_argument('--no-amp', action='store_true',
                        help='on a GPU, time float32 only')
    parser.add_argument('--out', help='write results.md and results.json '
                        'into this folder')
    args = parser.parse_args(argv)
    known = {s.name: s for s in ALL_SETTINGS}
    chosen = args.settings.split(',')
    args.variants = (args.variants or DEFAULT_VARIANTS + (
        ',stream' if args.device == 'cuda' else '')).split(',')
    wrong = [v for v in args.variants if v not in VARIANTS]
    if wrong:
        parser.error(f'unknown variant(s) {wrong}; choose from '
                     f'{sorted(VARIANTS)}')
    # The student alone first: the others are given as ratios of it.
    args.variants.sort(key=lambda v: v != 'student')
    unknown = [name for name in chosen if name not in known]
    if unknown:
        parser.error(f'unknown setting(s) {unknown}; choose from '
                     f'{sorted(known)}')
    if args.device == 'cuda' and not torch.cuda.is_available():
        parser.error('--device cuda but torch sees no GPU')

    device_name = torch.cuda.get_device_name() if args.device == 'cuda' \
        else f'CPU, {torch.get_num_threads()} threads'
    header = (f'{device_name}, torch {torch.__version__}, batch '
              f'{args.batch}, median of {args.repeat} steps after '
              f'{args.warmup} warm-up steps')
    print(header, flush=True)
    rows = []
    with tempfile.TemporaryDirectory() as ckpt_dir:
        for name in chosen:
            rows += bench_setting(known[name], args, ckpt_dir)
    if args.out:
        os.makedirs(args.out, exist_ok=True)
        with open(osp.join(args.out, 'results.json'), 'w') as f:
            json.dump(dict(header=header, rows=rows), f, indent=1)
        with open(osp.join(args.out, 'results.md'), 'w') as f:
            f.write(markdown(rows, header))
    return rows


if __name__ == '__main__':
    main()
