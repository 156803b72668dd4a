"""The embedded demo: teacher -> student distillation on generated data.

A DeepLabV3 R101-D8 teacher is trained on a synthetic Cityscapes-layout
data set; then one DeepLabV3 R18-D8 student is trained three ways (alone,
with KD, with DIST) from the same seed, each run through tools/train.py with
the configs of configs/demo/, and evaluated with mmseg's IoUMetric. The
results are a table and a plot of the curves.
"""
import glob
import json
import os
import os.path as osp
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Dict, List, Optional

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


@dataclass
class Run:
    """One training run of the demo."""
    name: str
    config: str
    work_dir: str
    distilled: bool = False

    @property
    def task_loss(self) -> str:
        """The logged task loss; the distilled runs prefix 'student.'."""
        return ('student.' if self.distilled else '') + 'decode.loss_ce'


def demo_runs(work_dir: str) -> List[Run]:
    """The teacher first, then the student alone, with KD and with DIST."""
    configs = osp.join(REPO, 'configs', 'demo')
    return [
        Run('teacher (R101-D8)',
            osp.join(configs, 'deeplabv3_r101_toy_teacher.py'),
            osp.join(work_dir, 'teacher')),
        Run('student alone (R18-D8)',
            osp.join(configs, 'deeplabv3_r18_toy.py'),
            osp.join(work_dir, 'student')),
        Run('student + KD', osp.join(configs, 'kd_deeplabv3_r18_toy.py'),
            osp.join(work_dir, 'kd'), distilled=True),
        Run('student + DIST', osp.join(configs, 'dist_deeplabv3_r18_toy.py'),
            osp.join(work_dir, 'dist'), distilled=True),
    ]


_ITER = re.compile(r'Iter\((train|val)\)\s*\[\s*(\d+)/(\d+)\]')


def _progress(name: str, line: str) -> Optional[str]:
    """A short progress line from an MMEngine log line, or None."""
    match = _ITER.search(line)
    if not match:
        return None
    mode, step, total = match.groups()
    if mode == 'train':
        loss = re.search(r'\sloss: ([\d.]+)', line)
        return (f'  {name}: iteration {step}/{total}'
                + (f', loss {float(loss.group(1)):.3f}' if loss else ''))
    miou = re.search(r'mIoU: ([\d.]+)', line)
    return f'  {name}: mIoU {float(miou.group(1)):.2f}' if miou else None


def train(run: Run, iters: int, options: List[str]) -> str:
    """Train one run with tools/train.py; return its last checkpoint."""
    cmd = [
        sys.executable,
        osp.join(REPO, 'tools', 'train.py'), run.config, '--work-dir',
        run.work_dir, '--cfg-options', f'train_cfg.max_iters={iters}',
        f'param_scheduler.0.end={iters}',
        f'train_cfg.val_interval={max(1, iters // 4)}',
        f'default_hooks.checkpoint.interval={iters}',
        f'default_hooks.logger.interval={max(1, min(10, iters // 10))}',
        *options
    ]
    env = dict(os.environ, PYTHONWARNINGS='ignore')
    log_lines: List[str] = []
    with subprocess.Popen(cmd, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, env=env,
                          cwd=REPO) as proc:
        for line in proc.stdout:
            log_lines.append(line)
            shown = _progress(run.name, line)
            if shown:
                print(shown, flush=True)
    if proc.returncode != 0:
        sys.stderr.write(''.join(log_lines[-60:]))
        raise RuntimeError(f'{run.name}: training failed ({" ".join(cmd)})')
    with open(osp.join(run.work_dir, 'last_checkpoint')) as f:
        return f.read().strip()


def read_log(run: Run) -> tuple:
    """The run's curves, (iteration, value) pairs of the task loss and of
    mIoU, and its last validation metrics."""
    paths = sorted(glob.glob(osp.join(run.work_dir, '*', 'vis_data',
                                      '2*.json')))
    curves: Dict[str, List[tuple]] = {'loss': [], 'mIoU': []}
    final: Dict[str, float] = {}
    with open(paths[-1]) as f:
        for line in f:
            row = json.loads(line)
            if run.task_loss in row:
                curves['loss'].append((row['iter'], row[run.task_loss]))
            if 'mIoU' in row:
                curves['mIoU'].append((row['step'], row['mIoU']))
                final = row
    return curves, final


def write_table(results: List[dict], path: str) -> str:
    """A Markdown table of the final metrics, written to ``path``."""
    lines = [
        '| model | iterations | mIoU | mAcc | aAcc | train time (s) |',
        '|---|---|---|---|---|---|'
    ]
    for r in results:
        lines.append(f"| {r['name']} | {r['iters']} | {r['mIoU']:.2f} | "
                     f"{r['mAcc']:.2f} | {r['aAcc']:.2f} | "
                     f"{r['seconds']:.0f} |")
    table = '\n'.join(lines)
    with open(path, 'w') as f:
        f.write(table + '\n')
    return table


def plot(runs: List[Run], curves: List[dict], path: str) -> None:
    """Task loss and mIoU against iterations, one line per run."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, (ax_loss, ax_miou) = plt.subplots(1, 2, figsize=(11, 4))
    for run, curve in zip(runs, curves):
        for ax, key in ((ax_loss, 'loss'), (ax_miou, 'mIoU')):
            if curve[key]:
                xs, ys = zip(*curve[key])
                ax.plot(xs, ys, marker='o' if key == 'mIoU' else None,
                        label=run.name)
    ax_loss.set(title='decode-head cross-entropy (train)',
                xlabel='iteration', ylabel='loss')
    ax_miou.set(title='mIoU (val, mmseg IoUMetric)', xlabel='iteration',
                ylabel='mIoU (%)')
    ax_miou.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def run_demo(work_dir: str, teacher_iters: int, student_iters: int,
             num_train: int, num_val: int, seed: int = 0) -> List[dict]:
    """Run the whole demo; return one result row per run."""
    from mmdist.datasets import make_cityscapes
    start = time.time()
    data_root = osp.join(work_dir, 'data', 'cityscapes')
    print(f'[1/5] generating {num_train} + {num_val} Cityscapes-layout '
          f'images under {data_root}', flush=True)
    make_cityscapes(data_root, num_train=num_train, num_val=num_val,
                    image_size=(64, 128), seed=seed)
    data = [
        f'{split}_dataloader.dataset.data_root={data_root}/'
        for split in ('train', 'val', 'test')
    ] + [f'randomness.seed={seed}']

    runs = demo_runs(work_dir)
    results, curves, teacher_ckpt = [], [], None
    for step, run in enumerate(runs, start=2):
        iters = teacher_iters if teacher_ckpt is None else student_iters
        print(f'[{step}/5] training {run.name} for {iters} iterations',
              flush=True)
        options = list(data)
        if run.distilled:
            options.append(f'model.teacher_ckpt={teacher_ckpt}')
        began = time.time()
        ckpt = train(run, iters, options)
        seconds = time.time() - began
        teacher_ckpt = teacher_ckpt or ckpt
        curve, final = read_log(run)
        curves.append(curve)
        results.append(dict(name=run.name, iters=iters, seconds=seconds,
                            mIoU=final['mIoU'], mAcc=final['mAcc'],
                            aAcc=final['aAcc']))

    table = write_table(results, osp.join(work_dir, 'results.md'))
    with open(osp.join(work_dir, 'results.json'), 'w') as f:
        json.dump(results, f, indent=2)
    plot(runs, curves, osp.join(work_dir, 'curves.png'))
    print(f'\nmmdist demo: DeepLabV3 R101-D8 -> R18-D8 on synthetic '
          f'Cityscapes-layout data ({num_train} train / {num_val} val images, '
          f'64 x 128), mIoU (%) on the val split\n')
    print(table)
    print(f'\nwritten: {work_dir}/results.md, results.json, curves.png '
          f'({time.time() - start:.0f} s in all)')
    return results
