"""A compiled teacher (model.teacher_compile) through tools/train.py: the
logged losses are the eager run's to float rounding, and the log says once
that the teacher's forward was compiled and how long it took."""
import glob
import os.path as osp

import pytest

from mmdist.datasets import make_cityscapes
from tests.utils import REPO, losses, run_tool

# The demo's Cityscapes DIST config with a random R18-D8 teacher (fast).
CONFIG = '''_base_ = '{repo}/configs/demo/dist_deeplabv3_r18_toy.py'
model = dict(
    teacher=dict(cfg_path='{repo}/configs/demo/deeplabv3_r18_toy.py'),
    teacher_ckpt=None)
data_root = '{root}/'
train_dataloader = dict(batch_size=2, dataset=dict(data_root=data_root))
val_dataloader = dict(dataset=dict(data_root=data_root))
test_dataloader = val_dataloader
train_cfg = dict(max_iters=3, val_interval=100)
default_hooks = dict(logger=dict(interval=1), checkpoint=dict(interval=100))
randomness = dict(seed=0, deterministic=True)
'''


@pytest.mark.slow
def test_compiled_teacher_logs_the_eager_runs_losses(tmp_path):
    root = str(tmp_path / 'cityscapes')
    make_cityscapes(root, num_train=4, num_val=2, image_size=(64, 128))
    config = tmp_path / 'dist.py'
    config.write_text(CONFIG.format(repo=REPO, root=root))
    runs = {}
    for compiled in (False, True):
        work_dir = str(tmp_path / f'compiled_{compiled}')
        # The compiled run in a process of its own: torch.compile's
        # caches and settings are the process's.
        run_tool(['tools/train.py', str(config), '--work-dir', work_dir,
                  '--cfg-options', f'model.teacher_compile={compiled}'],
                 process=compiled)
        runs[compiled] = losses(work_dir)
        log, = glob.glob(osp.join(work_dir, '*', '*.log'))
        with open(log) as f:
            said = [line for line in f
                    if "the teacher's forward compiled" in line]
        assert len(said) == (1 if compiled else 0), said
    eager, compiled = runs[False], runs[True]
    assert sorted(eager) == [1, 2, 3]
    assert eager.keys() == compiled.keys()
    for step in eager:
        assert eager[step].keys() == compiled[step].keys()
        # The losses (accuracies count pixels, which rounding can flip).
        for name, value in eager[step].items():
            if 'loss' in name:
                assert abs(compiled[step][name] - value) <= 1e-4 * max(
                    1.0, abs(value)), (step, name)
