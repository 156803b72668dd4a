"""mmdist's YOLO configs (configs/yolo/: mmyolo's RTMDet, YOLOv8, YOLOv5
and YOLOX students) through tools/train.py on a generated COCO-layout data
set, small: DIST while mmyolo's schedule runs (its Mosaic pipelines, EMA,
the pipeline switch), distillation stopped for the last epoch, and a run
killed with SIGKILL that resumes to the uninterrupted run's losses."""
import glob
import math
import os.path as osp
import signal

import pytest

from tests.utils import (REPO, batches, kill_during, last_run_losses, losses,
                         run_tool)
from tests.yolo_configs import small_yolo_config

CONFIGS = sorted(glob.glob(osp.join(REPO, 'configs', 'yolo', '*.py')))
NAMES = [osp.splitext(osp.basename(c))[0] for c in CONFIGS]
EPOCHS = 3  # two distilled, the last one not (iterations 5 and 6)
ENV = dict(PYTHONPATH=REPO)  # tests.record_batches


@pytest.fixture(scope='module')
def yolo_coco(module_tmp) -> str:
    from mmdist.datasets import make_coco
    root = str(module_tmp('coco') / 'coco')
    make_coco(root, num_train=4, num_val=2, image_size=(128, 128), seed=0)
    return root


def small_config(name: str, root: str, folder) -> str:
    """configs/yolo/<name>.py at 128 pixels, random weights, the test
    hooks that record the batches and hold the run where it is killed."""
    cfg = small_yolo_config(osp.join(REPO, 'configs', 'yolo', name + '.py'),
                            root, epochs=EPOCHS)
    cfg.model.teacher_ckpt = None
    cfg.custom_imports = dict(imports=['mmdist', 'tests.record_batches'],
                              allow_failed_imports=False)
    cfg.custom_hooks = [*cfg.custom_hooks,
                        dict(type='TestRecordBatchesHook'),
                        dict(type='TestPauseHook')]
    cfg.randomness = dict(seed=0, deterministic=True)
    cfg.log_processor = dict(by_epoch=True, window_size=1)
    path = str(folder / f'{name}.py')
    cfg.dump(path)
    return path


@pytest.mark.parametrize('name', NAMES)
def test_distils_stops_and_resumes_exactly(name, yolo_coco, tmp_path):
    config = small_config(name, yolo_coco, tmp_path)
    never_killed = str(tmp_path / 'never_killed')
    done = run_tool(['tools/train.py', config, '--work-dir', never_killed],
                    env=ENV)
    assert 'Distillation has been stopped!' in done.stdout + done.stderr
    expected = losses(never_killed)
    assert sorted(expected) == list(range(1, 2 * EPOCHS + 1))
    for iteration, row in expected.items():
        student = sum(v for k, v in row.items()
                      if k.startswith('student.loss'))
        if iteration <= 4:  # distilled: the student's losses and DIST's
            assert math.isfinite(row['distill.loss_cls'])
            assert row['loss'] > student
        else:  # the last epoch: the student's losses alone
            assert row['loss'] == pytest.approx(student, rel=1e-5)

    killed = str(tmp_path / 'killed')
    args = [config, '--work-dir', killed]
    assert kill_during(killed, args, 3, env=ENV) == -signal.SIGKILL
    run_tool(['tools/train.py', *args, '--resume'], env=ENV)
    after = last_run_losses(killed)
    assert sorted(after) == list(range(3, 2 * EPOCHS + 1))
    assert {i: expected[i] for i in after} == after
    assert batches(killed) == batches(never_killed)
