"""The embedded demos: teacher -> student distillation on generated data.

Each task generates a small data set in its real layout, trains a teacher
on it, then one student several ways (alone, with KD, with DIST) from the
same seed, each run through tools/train.py with the configs of
configs/demo/, and evaluated with the task's own OpenMMLab metric. The
results are a table, with each model's PyTorch latency, and a plot of the
curves.

- segmentation: DeepLabV3 R101-D8 -> R18-D8 on Cityscapes-layout data,
  mmseg's IoUMetric;
- classification: ResNet-34 -> ResNet-18 on ImageNet-layout data,
  mmpretrain's Accuracy;
- detection: RetinaNet R34 -> R18 on COCO-layout data, mmdet's CocoMetric
  (bbox mAP, logged as a fraction and shown in %);
- yolo: mmyolo's RTMDet-s -> RTMDet-tiny on the same kind of data, alone,
  with mmyolo's own CWD distillation, with DIST, and with DIST and CWD.
"""
import json
import os.path as osp
import time
from typing import Dict, List, Optional

from .runs import Run, demo_runs, latency, read_log, train
from .tables import plot, seeds_table, write_table
from .tasks import REPO, TASKS, DemoTask

__all__ = [
    'REPO', 'TASKS', 'DemoTask', 'Run', 'demo_runs', 'run_demo',
    'run_demo_seeds', 'seeds_table', 'write_table'
]


def run_demo_seeds(task_name: str, work_dir: Optional[str],
                   seeds: List[int], **sizes) -> Dict[int, List[dict]]:
    """Run one task's demo once per seed, each in ``<work_dir>/seed<k>/``,
    and write the mean and range over the seeds to ``results_seeds.md``.

    Args:
        task_name: A key of :data:`TASKS`.
        work_dir: The folder above the seeds' (None: the task's own).
        seeds: Two seeds or more, each once.
        **sizes: teacher_iters, student_iters, num_train, num_val and
            latency_repeat of
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


def run_demo(task_name: str,
             work_dir: Optional[str] = None,
             teacher_iters: Optional[int] = None,
             student_iters: Optional[int] = None,
             num_train: Optional[int] = None,
             num_val: Optional[int] = None,
             seed: int = 0,
             latency_repeat: int = 50) -> List[dict]:
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
        latency_repeat: The runs each model's latency is the median of.
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
    runs = demo_runs(task, work_dir)
    steps = len(runs) + 1
    print(f'[1/{steps}] generating {data_text} under {data_root}',
          flush=True)
    make_data(data_root, size['num_train'], size['num_val'], seed)
    data = [
        f'{split}_dataloader.dataset.data_root={data_root}/'
        for split in ('train', 'val', 'test')
    ] + [option.format(data_root=data_root) for option in task.data_options
         ] + [f'randomness.seed={seed}']

    results, curves, teacher_ckpt = [], [], None
    for step, run in enumerate(runs, start=2):
        iters = size['teacher_iters'] if teacher_ckpt is None \
            else size['iters']
        print(f'[{step}/{steps}] training {run.name} for {iters} '
              'iterations', flush=True)
        options = list(data)
        if teacher_ckpt is not None and step > 3:
            options.append(f'model.teacher_ckpt={teacher_ckpt}')
        began = time.time()
        ckpt = train(run, task.metric, iters, options, task.scale)
        seconds = time.time() - began
        teacher_ckpt = teacher_ckpt or ckpt
        curve, final = read_log(run, task.metric, task.scale)
        curves.append(curve)
        timing = latency(run, ckpt, data, latency_repeat)
        results.append(dict(name=run.name, iters=iters, seconds=seconds,
                            latency_ms=timing['ms'],
                            **{key: final[key] * task.scale
                               for key, _ in task.columns}))

    table = write_table(task, results, osp.join(work_dir, 'results.md'))
    with open(osp.join(work_dir, 'results.json'), 'w') as f:
        json.dump(results, f, indent=2)
    plot(task, runs, curves, osp.join(work_dir, 'curves.png'))
    print(f'\nmmdist demo: {task.title} on {data_text}, '
          f'{task.metric_text}\n')
    print(table)
    height, width = timing['input_size']
    print(f'\nlatency: PyTorch (eager) on the CPU, the median of '
          f'{timing["repeat"]} runs of one {height} x {width} image, '
          f'{timing["threads"]} threads')
    print(f'\nwritten: {work_dir}/results.md, results.json, curves.png '
          f'({time.time() - start:.0f} s in all)')
    return results
