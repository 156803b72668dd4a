"""Time from --resume to the first trained iteration, replay against skip.

An iteration-based DIST run (the demo's Cityscapes-layout DIST config over
generated data, with the R18-D8 student as a random teacher so that the
figures are the resume's, not the teacher's) is resumed at a late
iteration twice through tools/train.py:

- ``resume_mode=replay``: MMEngine's IterBasedTrainLoop, which draws every
  trained batch through the data pipeline again;
- ``resume_mode=fast`` (mmdist's default): the sampler starts at the first
  sample not yet trained.

The late checkpoint is made, not trained: one iteration is trained and
saved, then its ``meta.iter`` (and the message hub's ``iter``) set to the
late iteration; the resumed run trains one iteration more. The time is
from the process start to the first logged training iteration; a fresh
run's time to its first iteration is printed beside them (start-up, model
build, first step). Also printed: what seeding a sample costs
(:func:`mmdist.datasets.seeded`), in the main process (states saved and put
back) and in a worker, against loading a sample through the pipeline.

Run: python benchmarks/bench_resume.py [--iters 20000] [--workers 2]
"""
import argparse
import os
import os.path as osp
import re
import subprocess
import sys
import tempfile
import time

import torch

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
CONFIG = '''_base_ = '{repo}/configs/demo/dist_deeplabv3_r18_toy.py'
model = dict(
    teacher=dict(cfg_path='{repo}/configs/demo/deeplabv3_r18_toy.py'),
    teacher_ckpt=None)
data_root = '{root}/'
train_dataloader = dict(
    batch_size=2, num_workers={workers}, persistent_workers={persistent},
    dataset=dict(data_root=data_root))
val_dataloader = dict(dataset=dict(data_root=data_root))
test_dataloader = val_dataloader
train_cfg = dict(max_iters=1, val_interval=10**9)
param_scheduler = [dict(type='ConstantLR', factor=1.0, by_epoch=False)]
default_hooks = dict(logger=dict(interval=1),
                     checkpoint=dict(interval=1, max_keep_ckpts=1))
randomness = dict(seed=0)
'''
FIRST_ITER = re.compile(r'Iter\(train\)\s*\[\s*(\d+)/')


def time_to_first_iteration(args, env, expect=None):
    """Seconds from the start of tools/train.py to its first logged
    training iteration (the process is left to finish); ``expect``: a text
    its log must hold (which way it resumed)."""
    began = time.perf_counter()
    proc = subprocess.Popen([sys.executable, 'tools/train.py', *args],
                            cwd=REPO, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    seconds, lines = None, []
    for line in proc.stdout:
        lines.append(line)
        if seconds is None and FIRST_ITER.search(line):
            seconds = time.perf_counter() - began
    if proc.wait() != 0 or seconds is None or (
            expect and expect not in ''.join(lines)):
        sys.stderr.write(''.join(lines[-40:]))
        raise RuntimeError(f'tools/train.py {" ".join(args)} failed' + (
            f' or did not log {expect!r}' if expect else ''))
    return seconds


def late_checkpoint(source, iteration, out):
    """``source`` with its iteration counters set to ``iteration``."""
    checkpoint = torch.load(source, map_location='cpu', weights_only=False)
    checkpoint['meta']['iter'] = iteration
    hub = checkpoint.get('message_hub', {})
    if 'runtime_info' in hub:
        hub['runtime_info']['iter'] = iteration
    torch.save(checkpoint, out)


def seeding_cost(root, samples=500):
    """Microseconds that seeding adds to a sample (main process, worker),
    and the microseconds of loading one through the training pipeline."""
    from unittest import mock

    from mmengine.config import Config
    from mmengine.registry import DATASETS, init_default_scope

    import mmdist.datasets.resumable as resumable
    from mmdist.datasets import seeded
    cfg = Config.fromfile(osp.join(REPO, 'configs', 'demo',
                                   'deeplabv3_r18_toy.py'))
    cfg.train_dataloader.dataset.data_root = root + '/'
    init_default_scope('mmseg')
    dataset = DATASETS.build(cfg.train_dataloader.dataset)
    result = {}
    for where, worker in (('main process', None), ('worker', object())):
        with mock.patch.object(resumable, 'get_worker_info',
                               lambda worker=worker: worker):
            began = time.perf_counter()
            for seed in range(samples):
                with seeded(seed):
                    pass
            result[where] = (time.perf_counter() - began) / samples * 1e6
    began = time.perf_counter()
    for index in range(samples // 10):
        dataset[index % len(dataset)]
    result['pipeline'] = (time.perf_counter() - began) / (samples // 10) * 1e6
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--iters', type=int, default=20000,
                        help='the iteration to resume at')
    parser.add_argument('--workers', type=int, default=2)
    parser.add_argument('--work-dir', help='default: a temporary folder')
    args = parser.parse_args()
    from mmdist.datasets import make_cityscapes
    work = args.work_dir or tempfile.mkdtemp(prefix='bench_resume_')
    root = osp.join(work, 'cityscapes')
    make_cityscapes(root, num_train=20, num_val=2, image_size=(128, 256))
    config = osp.join(work, 'dist_toy_resume.py')
    with open(config, 'w') as f:
        f.write(CONFIG.format(repo=REPO, root=root, workers=args.workers,
                              persistent=args.workers > 0))
    env = dict(os.environ, PYTHONWARNINGS='ignore')
    fresh = osp.join(work, 'fresh')
    start_up = time_to_first_iteration([config, '--work-dir', fresh], env)
    late = osp.join(work, f'iter_{args.iters}.pth')
    late_checkpoint(osp.join(fresh, 'iter_1.pth'), args.iters, late)
    times = {}
    expect = dict(replay=f'Advance dataloader {args.iters} steps',
                  fast=f'Resuming at iteration {args.iters}')
    for mode in ('replay', 'fast'):
        times[mode] = time_to_first_iteration([
            config, '--work-dir', osp.join(work, mode), '--resume', late,
            '--cfg-options', f'resume_mode={mode}',
            f'train_cfg.max_iters={args.iters + 1}'
        ], env, expect[mode])
    cost = seeding_cost(root)
    print(f'\nresume at iteration {args.iters} of the Cityscapes-layout DIST '
          f'config (2 images of 128 x 256 a batch, {args.workers} workers), '
          f'torch {torch.__version__}, {torch.get_num_threads()} threads; '
          'seconds from the start of tools/train.py to the first trained '
          'iteration:\n')
    print('| run | seconds |\n|---|---|')
    print(f'| fresh run (no resume), for comparison | {start_up:.1f} |')
    print(f"| --resume, MMEngine's replay (resume_mode=replay) | "
          f"{times['replay']:.1f} |")
    print(f"| --resume, mmdist's sampler skip (default) | "
          f"{times['fast']:.1f} |")
    print(f"\nseeding a sample: {cost['main process']:.1f} us in the main "
          f"process (states saved and put back), {cost['worker']:.1f} us in "
          f"a worker; loading one through the pipeline: "
          f"{cost['pipeline']:.0f} us")


if __name__ == '__main__':
    main()
