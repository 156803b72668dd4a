"""The embedded demos: teacher -> student distillation on generated data.

Each task generates a small data set in its real layout, trains a teacher
on it, then one student three ways (alone, with KD, with DIST) from the
same seed, each run through tools/train.py with the configs of
configs/demo/, and evaluated with the task's own OpenMMLab metric. The
results are a table and a plot of the curves.

- segmentation: DeepLabV3 R101-D8 -> R18-D8 on Cityscapes-layout data,
  mmseg's IoUMetric;
- classification: ResNet-34 -> ResNet-18 on ImageNet-layout data,
  mmpretrain's Accuracy;
- detection: RetinaNet R34 -> R18 on COCO-layout data, mmdet's CocoMetric
  (bbox mAP, logged as a fraction and shown in %).
"""
import functools
import glob
import json
import os
import os.path as osp
import re
import sys
import time
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Tuple

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def _make_cityscapes(root: str, num_train: int, num_val: int,
                     seed: int) -> None:
    from mmdist.datasets import make_cityscapes
    make_cityscapes(root, num_train=num_train, num_val=num_val,
                    image_size=(64, 128), seed=seed)


def _make_coco(root: str, num_train: int, num_val: int, seed: int) -> None:
    from mmdist.datasets import make_coco
    make_coco(root, num_train=num_train, num_val=num_val,
              image_size=(64, 64), max_shapes=3, seed=seed,
              shape_classes=True, radius=(0.12, 0.25))


def _make_imagenet(root: str, num_train: int, num_val: int,
                   seed: int) -> None:
    from mmdist.datasets import make_imagenet
    make_imagenet(root, num_train=num_train, num_val=num_val,
                  image_size=(32, 32), seed=seed)


@dataclass(frozen=True)
class DemoTask:
    """What one demo trains, on which data, and what it reports.

    Attributes:
        configs: Config file names under configs/demo/, in the order
            teacher, student alone, KD, DIST.
        names: The four runs' names in the table.
        metric: The logged validation metric that the curves follow.
        columns: (logged key, table header) of the table's metrics.
        task_loss: The student's logged task loss (the distilled runs
            prefix it with 'student.').
        data: The data set's folder under the work dir, and its writer
            ``(root, num_train, num_val, seed)``.
        data_text: How the data set is described (``{train}``/``{val}``
            are the counts).
        metric_text: What the table reports.
        defaults: teacher_iters, iters, num_train and num_val.
        work_dir: Where the demo writes by default.
        scale: What the logged metrics are multiplied by to be shown in %
            (100 for a metric logged as a fraction, as COCO's mAP).
        data_options: --cfg-options that name files of the generated data
            beside the data roots (``{data_root}`` is its folder), as the
            annotation file of COCO's evaluator.
    """
    title: str
    configs: Tuple[str, str, str, str]
    names: Tuple[str, str, str, str]
    metric: str
    columns: Tuple[Tuple[str, str], ...]
    task_loss: str
    loss_title: str
    data: Tuple[str, Callable[[str, int, int, int], None]]
    data_text: str
    metric_text: str
    defaults: Dict[str, int]
    work_dir: str
    scale: float = 1.0
    data_options: Tuple[str, ...] = ()


TASKS: Dict[str, DemoTask] = {
    'segmentation': DemoTask(
        title='DeepLabV3 R101-D8 -> R18-D8',
        configs=('deeplabv3_r101_toy_teacher.py', 'deeplabv3_r18_toy.py',
                 'kd_deeplabv3_r18_toy.py', 'dist_deeplabv3_r18_toy.py'),
        names=('teacher (R101-D8)', 'student alone (R18-D8)',
               'student + KD', 'student + DIST'),
        metric='mIoU',
        columns=(('mIoU', 'mIoU'), ('mAcc', 'mAcc'), ('aAcc', 'aAcc')),
        task_loss='decode.loss_ce',
        loss_title='decode-head cross-entropy (train)',
        data=('data/cityscapes', _make_cityscapes),
        data_text='synthetic Cityscapes-layout data ({train} train / {val} '
        'val images, 64 x 128)',
        metric_text='mIoU (%) on the val split',
        defaults=dict(teacher_iters=150, iters=100, num_train=60,
                      num_val=20),
        work_dir='work_dirs/demo'),
    'classification': DemoTask(
        title='ResNet-34 -> ResNet-18',
        configs=('resnet34_toy_teacher.py', 'resnet18_toy.py',
                 'kd_resnet18_toy.py', 'dist_resnet18_toy.py'),
        names=('teacher (ResNet-34)', 'student alone (ResNet-18)',
               'student + KD', 'student + DIST'),
        metric='accuracy/top1',
        columns=(('accuracy/top1', 'top-1'), ),
        task_loss='loss',
        loss_title='classification cross-entropy (train)',
        data=('data/imagenet', _make_imagenet),
        data_text='synthetic ImageNet-layout data (24 classes, {train} train '
        '/ {val} val images per class, 32 x 32)',
        metric_text='top-1 (%) on the val split',
        defaults=dict(teacher_iters=300, iters=200, num_train=100,
                      num_val=20),
        work_dir='work_dirs/demo_classification'),
    'detection': DemoTask(
        title='RetinaNet R34 -> R18',
        configs=('retinanet_r34_toy_teacher.py', 'retinanet_r18_toy.py',
                 'kd_retinanet_r18_toy.py', 'dist_retinanet_r18_toy.py'),
        names=('teacher (RetinaNet R34)', 'student alone (RetinaNet R18)',
               'student + KD', 'student + DIST'),
        metric='coco/bbox_mAP',
        columns=(('coco/bbox_mAP', 'bbox mAP'),
                 ('coco/bbox_mAP_50', 'mAP_50'),
                 ('coco/bbox_mAP_75', 'mAP_75')),
        task_loss='loss_cls',
        loss_title='focal loss of the classification head (train)',
        data=('data/coco', _make_coco),
        data_text='synthetic COCO-layout data (3 shape classes, {train} '
        'train / {val} val images, 64 x 64)',
        metric_text="COCO's bbox mAP (%) on the val split",
        defaults=dict(teacher_iters=400, iters=250, num_train=400,
                      num_val=100),
        work_dir='work_dirs/demo_detection',
        scale=100,
        data_options=tuple(
            f'{split}_evaluator.ann_file={{data_root}}/annotations/'
            'instances_val2017.json' for split in ('val', 'test'))),
}


@dataclass
class Run:
    """One training run of a demo."""
    name: str
    config: str
    work_dir: str
    task_loss: str


def demo_runs(task: DemoTask, work_dir: str) -> List[Run]:
    """The teacher first, then the student alone, with KD and with DIST."""
    runs = []
    for index, (name, config, sub) in enumerate(
            zip(task.names, task.configs,
                ('teacher', 'student', 'kd', 'dist'))):
        loss = ('student.' if index >= 2 else '') + task.task_loss
        runs.append(Run(name, osp.join(REPO, 'configs', 'demo', config),
                        osp.join(work_dir, sub), loss))
    return runs


_ITER = re.compile(r'Iter\((train|val)\)\s*\[\s*(\d+)/(\d+)\]')


def _progress(name: str, metric: str, line: str,
              scale: float = 1.0) -> Optional[str]:
    """A short progress line from an MMEngine log line, or None (the
    metric multiplied by ``scale``)."""
    match = _ITER.search(line)
    if not match:
        return None
    mode, step, total = match.groups()
    if mode == 'train':
        loss = re.search(r'\sloss: ([\d.]+)', line)
        return (f'  {name}: iteration {step}/{total}'
                + (f', loss {float(loss.group(1)):.3f}' if loss else ''))
    value = re.search(rf'\s{re.escape(metric)}: ([\d.]+)', line)
    return f'  {name}: {metric} {float(value.group(1)) * scale:.2f}' \
        if value else None


def _train_child(argv: List[str], writer) -> None:
    """In a process of the fork server: tools/train.py with ``argv``, its
    output (Python's and the C libraries') into the pipe ``writer``."""
    import gc
    import runpy
    import warnings
    # The fork server's imports are left out of the cyclic collector: each
    # dataset MMEngine builds runs a full collection over them (a detection
    # run of the demo: 1.5 s in full collections, 0.1 s frozen).
    gc.freeze()
    for fd in (1, 2):
        os.dup2(writer.fileno(), fd)
    writer.close()
    warnings.simplefilter('ignore')
    sys.argv = argv
    os.chdir(REPO)
    try:
        runpy.run_path(argv[0], run_name='__main__')
    finally:
        sys.stdout.flush()
        sys.stderr.flush()


@functools.lru_cache(maxsize=None)
def _trainers():
    """Where the runs start: a fork server that has imported mmdist and the
    task packages once (a new interpreter spends ~10 s on them), and never
    runs torch itself, so that a fork of it starts clean."""
    import multiprocessing
    from multiprocessing import forkserver
    context = multiprocessing.get_context('forkserver')
    context.set_forkserver_preload(['mmdist', 'mmdist.apis', 'mmdet.models',
                                    'mmseg.models', 'mmpretrain.models'])
    # Its imports' warnings are noise in the demo's output.
    saved = os.environ.get('PYTHONWARNINGS')
    os.environ['PYTHONWARNINGS'] = 'ignore'
    try:
        forkserver.ensure_running()
    finally:
        if saved is None:
            del os.environ['PYTHONWARNINGS']
        else:
            os.environ['PYTHONWARNINGS'] = saved
    return context


def train(run: Run, metric: str, iters: int, options: List[str],
          scale: float = 1.0) -> str:
    """Train one run with tools/train.py, in a process of its own; return
    its last checkpoint (the progress shows the metric multiplied by
    ``scale``)."""
    argv = [
        osp.join(REPO, 'tools', 'train.py'), run.config, '--work-dir',
        run.work_dir, '--cfg-options', f'train_cfg.max_iters={iters}',
        f'param_scheduler.0.end={iters}',
        f'train_cfg.val_interval={max(1, iters // 4)}',
        f'default_hooks.checkpoint.interval={iters}',
        f'default_hooks.logger.interval={max(1, min(10, iters // 10))}',
        *options
    ]
    context = _trainers()
    reader, writer = context.Pipe(duplex=False)
    proc = context.Process(target=_train_child, args=(argv, writer))
    proc.start()
    writer.close()  # the child's is the last: its end is the pipe's end
    log_lines: List[str] = []
    with os.fdopen(os.dup(reader.fileno()), errors='replace') as stream:
        reader.close()
        for line in stream:
            log_lines.append(line)
            shown = _progress(run.name, metric, line, scale)
            if shown:
                print(shown, flush=True)
    proc.join()
    if proc.exitcode != 0:
        sys.stderr.write(''.join(log_lines[-60:]))
        raise RuntimeError(f'{run.name}: training failed (exit code '
                           f'{proc.exitcode}: python {" ".join(argv)})')
    with open(osp.join(run.work_dir, 'last_checkpoint')) as f:
        return f.read().strip()


def read_log(run: Run, metric: str, scale: float = 1.0) -> tuple:
    """The run's curves, (iteration, value) pairs of the task loss and of
    the metric (its logged values times ``scale``), and its last validation
    row as logged."""
    paths = sorted(glob.glob(osp.join(run.work_dir, '*', 'vis_data',
                                      '2*.json')))
    curves: Dict[str, List[tuple]] = {'loss': [], 'metric': []}
    final: Dict[str, float] = {}
    with open(paths[-1]) as f:
        for line in f:
            row = json.loads(line)
            if run.task_loss in row:
                curves['loss'].append((row['iter'], row[run.task_loss]))
            if metric in row:
                curves['metric'].append((row['step'], row[metric] * scale))
                final = row
    return curves, final


def write_table(task: DemoTask, results: List[dict], path: str) -> str:
    """A Markdown table of the final metrics, written to ``path``."""
    headers = [header for _, header in task.columns]
    lines = [
        '| model | iterations | ' + ' | '.join(headers) +
        ' | train time (s) |',
        '|---|---|' + '---|' * len(headers) + '---|'
    ]
    for r in results:
        values = ' | '.join(f'{r[key]:.2f}' for key, _ in task.columns)
        lines.append(f"| {r['name']} | {r['iters']} | {values} | "
                     f"{r['seconds']:.0f} |")
    table = '\n'.join(lines)
    with open(path, 'w') as f:
        f.write(table + '\n')
    return table


def seeds_table(task: DemoTask, results: Dict[int, List[dict]]) -> str:
    """A Markdown table of each run's mean over seeds, and its range.

    Args:
        task: The demo that was run.
        results: The rows :func:`run_demo` returned, by seed; every seed
            has the same runs in the same order.

    Returns:
        One line per run: its metrics as ``mean (min-max)`` and its mean
        train time.
    """
    seeds = sorted(results)
    names = [[r['name'] for r in results[seed]] for seed in seeds]
    if any(n != names[0] for n in names):
        raise ValueError(f'every seed must have the same runs; got {names}')
    headers = [header for _, header in task.columns]
    lines = [
        '| model | iterations | ' + ' | '.join(
            f'{h}: mean (range)' for h in headers) +
        ' | train time (s), mean |',
        '|---|---|' + '---|' * len(headers) + '---|'
    ]
    for i, name in enumerate(names[0]):
        rows = [results[seed][i] for seed in seeds]
        cells = []
        for key, _ in task.columns:
            values = [r[key] for r in rows]
            cells.append(f'{sum(values) / len(values):.2f} '
                         f'({min(values):.2f}-{max(values):.2f})')
        seconds = sum(r['seconds'] for r in rows) / len(rows)
        lines.append(f"| {name} | {rows[0]['iters']} | " +
                     ' | '.join(cells) + f' | {seconds:.0f} |')
    return '\n'.join(lines)


def run_demo_seeds(task_name: str, work_dir: Optional[str],
                   seeds: List[int], **sizes) -> Dict[int, List[dict]]:
    """Run one task's demo once per seed, each in ``<work_dir>/seed<k>/``,
    and write the mean and range over the seeds to ``results_seeds.md``.

    Args:
        task_name: A key of :data:`TASKS`.
        work_dir: The folder above the seeds' (None: the task's own).
        seeds: Two seeds or more, each once.
        **sizes: teacher_iters, student_iters, num_train and num_val of
            :func:`run_demo`.
    """
    if len(seeds) < 2 or len(set(seeds)) != len(seeds):
        raise ValueError(f'give two seeds or more, each once; got {seeds}')
    work_dir = work_dir or TASKS[task_name].work_dir
    results = {
        seed: run_demo(task_name, osp.join(work_dir, f'seed{seed}'),
                       seed=seed, **sizes)
        for seed in seeds
    }
    table = seeds_table(TASKS[task_name], results)
    with open(osp.join(work_dir, 'results_seeds.md'), 'w') as f:
        f.write(table + '\n')
    print(f'\nmmdist demo over seeds {", ".join(map(str, seeds))}:\n')
    print(table)
    print(f'\nwritten: {work_dir}/results_seeds.md')
    return results


def plot(task: DemoTask, runs: List[Run], curves: List[dict],
         path: str) -> None:
    """Task loss and the metric against iterations, one line per run."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, (ax_loss, ax_metric) = plt.subplots(1, 2, figsize=(11, 4))
    for run, curve in zip(runs, curves):
        for ax, key in ((ax_loss, 'loss'), (ax_metric, 'metric')):
            if curve[key]:
                xs, ys = zip(*curve[key])
                ax.plot(xs, ys, marker='o' if key == 'metric' else None,
                        label=run.name)
    header = dict(task.columns)[task.metric]
    ax_loss.set(title=task.loss_title, xlabel='iteration', ylabel='loss')
    ax_metric.set(title=f'{header} (val)', xlabel='iteration',
                  ylabel=f'{header} (%)')
    ax_metric.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def run_demo(task_name: str,
             work_dir: Optional[str] = None,
             teacher_iters: Optional[int] = None,
             student_iters: Optional[int] = None,
             num_train: Optional[int] = None,
             num_val: Optional[int] = None,
             seed: int = 0) -> List[dict]:
    """Run one task's demo; return one result row per run.

    Args:
        task_name: A key of :data:`TASKS`.
        work_dir: Where the data, the runs and the results go (None: the
            task's own folder).
        teacher_iters: The teacher's iterations (None: the task's default).
        student_iters: Each student run's iterations.
        num_train: Training images (per class for classification).
        num_val: Validation images (per class for classification).
        seed: The data's and every run's seed.
    """
    task = TASKS[task_name]
    work_dir = work_dir or task.work_dir
    given = dict(teacher_iters=teacher_iters, iters=student_iters,
                 num_train=num_train, num_val=num_val)
    size = {k: task.defaults[k] if v is None else v for k, v in given.items()}
    start = time.time()
    folder, make_data = task.data
    data_root = osp.join(work_dir, folder)
    data_text = task.data_text.format(train=size['num_train'],
                                      val=size['num_val'])
    print(f'[1/5] generating {data_text} under {data_root}', flush=True)
    make_data(data_root, size['num_train'], size['num_val'], seed)
    data = [
        f'{split}_dataloader.dataset.data_root={data_root}/'
        for split in ('train', 'val', 'test')
    ] + [option.format(data_root=data_root) for option in task.data_options
         ] + [f'randomness.seed={seed}']

    runs = demo_runs(task, work_dir)
    results, curves, teacher_ckpt = [], [], None
    for step, run in enumerate(runs, start=2):
        iters = size['teacher_iters'] if teacher_ckpt is None \
            else size['iters']
        print(f'[{step}/5] training {run.name} for {iters} iterations',
              flush=True)
        options = list(data)
        if teacher_ckpt is not None and step > 3:
            options.append(f'model.teacher_ckpt={teacher_ckpt}')
        began = time.time()
        ckpt = train(run, task.metric, iters, options, task.scale)
        seconds = time.time() - began
        teacher_ckpt = teacher_ckpt or ckpt
        curve, final = read_log(run, task.metric, task.scale)
        curves.append(curve)
        results.append(dict(name=run.name, iters=iters, seconds=seconds,
                            **{key: final[key] * task.scale
                               for key, _ in task.columns}))

    table = write_table(task, results, osp.join(work_dir, 'results.md'))
    with open(osp.join(work_dir, 'results.json'), 'w') as f:
        json.dump(results, f, indent=2)
    plot(task, runs, curves, osp.join(work_dir, 'curves.png'))
    print(f'\nmmdist demo: {task.title} on {data_text}, '
          f'{task.metric_text}\n')
    print(table)
    print(f'\nwritten: {work_dir}/results.md, results.json, curves.png '
          f'({time.time() - start:.0f} s in all)')
    return results
