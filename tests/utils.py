"""Helpers for the tests: running the tools and reading what they logged."""
import glob
import json
import os
import os.path as osp
import subprocess
import sys
from typing import Dict, List, Sequence

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))


def run_tool(args: Sequence[str], check: bool = True,
             timeout: int = 900) -> subprocess.CompletedProcess:
    """Run ``python <args>`` from the repository root."""
    env = dict(os.environ, PYTHONWARNINGS='ignore', OMP_NUM_THREADS='2')
    proc = subprocess.run([sys.executable, *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(
            f'{" ".join(args)} failed ({proc.returncode}):\n'
            f'{proc.stdout[-4000:]}\n{proc.stderr[-6000:]}')
    return proc


def read_scalars(work_dir: str) -> List[Dict[str, float]]:
    """The train/val scalars MMEngine logged under ``work_dir``."""
    rows = []
    # <timestamp>.json from LoggerHook (scalars.json repeats it).
    for path in sorted(glob.glob(osp.join(work_dir, '*', 'vis_data',
                                          '2*.json'))):
        with open(path) as f:
            rows += [json.loads(line) for line in f if line.strip()]
    return rows


def read_test_metrics(work_dir: str) -> Dict[str, float]:
    """The metrics that a test run wrote (work_dir/<timestamp>/<ts>.json)."""
    paths = sorted(glob.glob(osp.join(work_dir, '*', '*.json')))
    assert paths, f'no test metrics under {work_dir}'
    with open(paths[-1]) as f:
        metrics = json.load(f)
    return {k: v for k, v in metrics.items() if k not in ('time', 'data_time')}


def coco_options(root: str, size: int = 128) -> List[str]:
    """--cfg-options that point a stock COCO config at ``root`` and shrink
    it for CPU: image size, one worker-less epoch, logging every iteration.
    """
    root = root.rstrip('/') + '/'
    ann = root + 'annotations/instances_val2017.json'
    scale = f'({size},{size})'
    options = [
        f'{split}_dataloader.dataset.data_root={root}'
        for split in ('train', 'val', 'test')
    ]
    options += [
        f'val_evaluator.ann_file={ann}',
        f'test_evaluator.ann_file={ann}',
        f'train_dataloader.dataset.pipeline.2.scale={scale}',
        f'val_dataloader.dataset.pipeline.1.scale={scale}',
        f'test_dataloader.dataset.pipeline.1.scale={scale}',
        'train_dataloader.batch_size=2',
    ]
    for split in ('train', 'val', 'test'):
        options += [
            f'{split}_dataloader.num_workers=0',
            f'{split}_dataloader.persistent_workers=False'
        ]
    options += ['train_cfg.max_epochs=1', 'default_hooks.logger.interval=1']
    return options
