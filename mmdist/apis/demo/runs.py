"""One run of a demo: tools/train.py in a process forked from a server that
imported mmdist once, its progress and its logged curves."""
import functools
import glob
import json
import os
import os.path as osp
import re
import sys
from dataclasses import dataclass
from typing import Dict, List, Optional

from .tasks import REPO, DemoTask


@dataclass
class Run:
    """One training run of a demo."""
    name: str
    config: str
    work_dir: str
    task_loss: str


def demo_runs(task: DemoTask, work_dir: str) -> List[Run]:
    """The teacher first, then the student alone, then distilled (with KD
    and with DIST, or the task's own)."""
    runs = []
    for index, (name, config, sub) in enumerate(
            zip(task.names, task.configs, task.dirs)):
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


def _latency_child(config: str, checkpoint: str, options: List[str],
                   repeat: int, writer) -> None:
    """In a process of the fork server: the PyTorch latency of the model a
    run trained (:func:`checkpoint_latency`), sent through ``writer``."""
    import argparse
    import gc
    import warnings

    from mmengine.config import DictAction

    from mmdist.apis.deploy.latency import checkpoint_latency
    gc.freeze()
    warnings.simplefilter('ignore')
    os.chdir(REPO)
    parser = argparse.ArgumentParser()
    parser.add_argument('--options', nargs='+', action=DictAction)
    parsed = parser.parse_args(['--options', *options]).options
    with open(os.devnull, 'w') as null:
        os.dup2(null.fileno(), 1)  # MMEngine's logging
        writer.send(checkpoint_latency(config, checkpoint, parsed, repeat))
    writer.close()


def latency(run: Run, checkpoint: str, options: List[str],
            repeat: int = 50) -> dict:
    """The PyTorch latency of ``run``'s model at its checkpoint (the median
    of ``repeat`` runs), measured in a process of its own (as the runs
    train)."""
    context = _trainers()
    reader, writer = context.Pipe(duplex=False)
    proc = context.Process(target=_latency_child,
                           args=(run.config, checkpoint, options, repeat,
                                 writer))
    proc.start()
    writer.close()
    try:
        measured = reader.recv()
    except EOFError:
        measured = None
    proc.join()
    if measured is None or proc.exitcode != 0:
        raise RuntimeError(f'{run.name}: measuring its latency failed (exit '
                           f'code {proc.exitcode})')
    return measured
