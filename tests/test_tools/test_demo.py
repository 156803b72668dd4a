"""A shortened `make demo`: the same tool and configs, a few iterations;
then the checks of a teacher on what it trained (tools/test.py --teacher
and the teacher's metric at a distillation run's first validation)."""
import glob
import json
import math
import os.path as osp

import pytest

from mmdist.apis.demo import TASKS, seeds_table
from tests.utils import (read_scalars, read_test_metrics, run_tool,
                         save_random_model)

DIST = 'configs/demo/dist_deeplabv3_r18_toy.py'
METRICS = ('mIoU', 'mAcc', 'aAcc')

# The demos end to end (make demo, shortened): make test-slow.
pytestmark = pytest.mark.slow


@pytest.fixture(scope='module')
def demo(module_tmp):
    work_dir = str(module_tmp('demo') / 'demo')
    proc = run_tool(['tools/demo.py', '--work-dir', work_dir,
                     '--teacher-iters', '4', '--iters', '4', '--num-train',
                     '8', '--num-val', '2', '--latency-repeat', '1'])
    return work_dir, proc.stdout


def data_options(work_dir):
    root = osp.join(work_dir, 'data', 'cityscapes') + '/'
    return [f'{split}_dataloader.dataset.data_root={root}'
            for split in ('train', 'val', 'test')]


def last_validation(work_dir):
    return [r for r in read_scalars(work_dir) if 'mIoU' in r][-1]


def test_shortened_demo(demo):
    work_dir, stdout = demo
    with open(osp.join(work_dir, 'results.json')) as f:
        results = json.load(f)
    assert [r['name'] for r in results] == [
        'teacher (R101-D8)', 'student alone (R18-D8)', 'student + KD',
        'student + DIST'
    ]
    for row in results:
        assert row['iters'] == 4
        for key in METRICS:
            assert math.isfinite(row[key]) and 0 <= row[key] <= 100
    with open(osp.join(work_dir, 'curves.png'), 'rb') as f:
        assert f.read(8) == b'\x89PNG\r\n\x1a\n'
    with open(osp.join(work_dir, 'results.md')) as f:
        table = f.read()
    assert table.startswith('| model | iterations | mIoU')
    assert table in stdout  # the table ends the demo's output
    for step in range(1, 6):
        assert f'[{step}/5]' in stdout
    assert 'student + DIST: iteration 4/4' in stdout
    # Each distilled run loaded the teacher trained first.
    teacher = osp.join(work_dir, 'teacher', 'iter_4.pth')
    assert osp.isfile(teacher)
    for run in ('kd', 'dist'):
        with open(osp.join(work_dir, run,
                           f'{run}_deeplabv3_r18_toy.py')) as f:
            assert teacher in f.read()


def test_first_validation_logs_the_teachers_metric(demo):
    work_dir, _ = demo
    teacher = last_validation(osp.join(work_dir, 'teacher'))
    for run in ('kd', 'dist'):
        rows = [r for r in read_scalars(osp.join(work_dir, run))
                if 'mIoU' in r]
        assert rows
        # Same data, same checkpoint: what the teacher scored in its own
        # last validation, beside the student's metric.
        for key in METRICS:
            assert rows[0][f'teacher/{key}'] == teacher[key]
        path = sorted(glob.glob(osp.join(work_dir, run, '*', '*.log')))[-1]
        with open(path) as f:
            log = f.read()
        assert 'teacher (' in log and 'on the validation set: aAcc' in log
        assert log.count('on the validation set') == 1  # evaluated once


def test_tools_test_evaluates_the_teacher_alone(demo, tmp_path):
    work_dir, _ = demo
    teacher = last_validation(osp.join(work_dir, 'teacher'))
    trained = osp.join(work_dir, 'teacher', 'iter_4.pth')
    random = save_random_model(
        'mmseg::deeplabv3/deeplabv3_r101-d8_4xb2-80k_cityscapes-512x1024.py',
        str(tmp_path / 'random.pth'))
    scores = {}
    for name, ckpt in (('trained', trained), ('random', random)):
        out = str(tmp_path / name)
        run_tool(['tools/test.py', DIST, ckpt, '--teacher', '--work-dir',
                  out, '--cfg-options', *data_options(work_dir)])
        scores[name] = read_test_metrics(out)
    # The trained teacher scores what it scored in its own training run.
    for key in METRICS:
        assert scores['trained'][key] == teacher[key]
    assert any(scores['random'][k] != scores['trained'][k] for k in METRICS)
    # Without a checkpoint argument: model.teacher_ckpt.
    out = str(tmp_path / 'default')
    run_tool(['tools/test.py', DIST, '--teacher', '--work-dir', out,
              '--cfg-options', *data_options(work_dir),
              f'model.teacher_ckpt={trained}'])
    assert read_test_metrics(out) == scores['trained']


def test_teacher_that_does_not_fit_is_refused(demo, tmp_path):
    work_dir, _ = demo
    student = osp.join(work_dir, 'student', 'iter_4.pth')
    proc = run_tool(['tools/test.py', DIST, student, '--teacher',
                     '--work-dir', str(tmp_path / 'out'), '--cfg-options',
                     *data_options(work_dir)], check=False)
    assert proc.returncode != 0
    assert 'does not fit the teacher model' in proc.stderr
    assert not (tmp_path / 'out').exists()


def test_teacher_evaluation_can_be_turned_off(demo, tmp_path):
    work_dir, _ = demo
    out = str(tmp_path / 'off')
    run_tool(['tools/train.py', DIST, '--work-dir', out, '--cfg-options',
              *data_options(work_dir), 'train_cfg.max_iters=1',
              'train_cfg.val_interval=1', 'default_hooks.teacher_eval=None',
              'model.teacher_ckpt=' + osp.join(work_dir, 'teacher',
                                               'iter_4.pth')])
    row = last_validation(out)
    assert 'mIoU' in row and not any(k.startswith('teacher/') for k in row)


def test_shortened_classification_demo_over_two_seeds(tmp_path):
    top = str(tmp_path / 'demo')
    proc = run_tool(['tools/demo.py', '--task', 'classification',
                     '--work-dir', top, '--teacher-iters', '4',
                     '--iters', '4', '--num-train', '4', '--num-val', '2',
                     '--seed', '0', '1', '--latency-repeat', '1'])
    by_seed = {}
    for seed in (0, 1):
        with open(osp.join(top, f'seed{seed}', 'results.json')) as f:
            by_seed[seed] = json.load(f)
    # The summary is the table of what each seed's run wrote.
    summary = seeds_table(TASKS['classification'], by_seed)
    with open(osp.join(top, 'results_seeds.md')) as f:
        assert f.read() == summary + '\n'
    assert summary in proc.stdout
    assert len(summary.splitlines()) == 6  # header, rule, four runs
    work_dir, results = osp.join(top, 'seed0'), by_seed[0]
    assert [r['name'] for r in results] == [
        'teacher (ResNet-34)', 'student alone (ResNet-18)', 'student + KD',
        'student + DIST'
    ]
    for row in results:
        assert row['iters'] == 4
        assert 0 <= row['accuracy/top1'] <= 100
    with open(osp.join(work_dir, 'results.md')) as f:
        table = f.read()
    assert table.startswith('| model | iterations | top-1 |')
    assert table in proc.stdout
    with open(osp.join(work_dir, 'curves.png'), 'rb') as f:
        assert f.read(8) == b'\x89PNG\r\n\x1a\n'
    # 24 class folders of 4 training images each, ImageNet's layout.
    train = osp.join(work_dir, 'data', 'imagenet', 'train')
    assert len(glob.glob(osp.join(train, 'n*', 'n*_*.JPEG'))) == 96
    teacher = osp.join(work_dir, 'teacher', 'iter_4.pth')
    teacher_top1 = results[0]['accuracy/top1']
    for run in ('kd', 'dist'):
        rows = [r for r in read_scalars(osp.join(work_dir, run))
                if 'accuracy/top1' in r]
        assert rows[0]['teacher/accuracy/top1'] == teacher_top1
        with open(osp.join(work_dir, run, f'{run}_resnet18_toy.py')) as f:
            assert teacher in f.read()


@pytest.mark.parametrize('task', ['detection', 'yolo'])
def test_shortened_detection_demos(task, tmp_path):
    """RetinaNet (mmdet) and RTMDet (mmyolo; its student also with mmyolo's
    own CWD and with DIST beside it), on COCO-layout data."""
    work_dir = str(tmp_path / 'demo')
    proc = run_tool(['tools/demo.py', '--task', task, '--work-dir',
                     work_dir, '--teacher-iters', '4', '--iters', '4',
                     '--num-train', '8', '--num-val', '4',
                     '--latency-repeat', '1'])
    demo = TASKS[task]
    with open(osp.join(work_dir, 'results.json')) as f:
        results = json.load(f)
    assert [r['name'] for r in results] == list(demo.names)
    keys = ('coco/bbox_mAP', 'coco/bbox_mAP_50', 'coco/bbox_mAP_75')
    for row in results:
        assert row['iters'] == 4 and row['latency_ms'] > 0
        for key in keys:
            assert math.isfinite(row[key]) and 0 <= row[key] <= 100
    with open(osp.join(work_dir, 'results.md')) as f:
        table = f.read()
    assert table.startswith(
        '| model | iterations | bbox mAP | mAP_50 | mAP_75 | latency (ms) |')
    assert table in proc.stdout
    steps = len(demo.names) + 1
    for step in range(1, steps + 1):
        assert f'[{step}/{steps}]' in proc.stdout
    assert f'{demo.names[-1]}: iteration 4/4' in proc.stdout
    with open(osp.join(work_dir, 'curves.png'), 'rb') as f:
        assert f.read(8) == b'\x89PNG\r\n\x1a\n'
    # COCO's layout: the annotation files the evaluator read.
    coco = osp.join(work_dir, 'data', 'coco')
    for split in ('train', 'val'):
        assert osp.isfile(osp.join(coco, 'annotations',
                                   f'instances_{split}2017.json'))
    assert len(glob.glob(osp.join(coco, 'train2017', '*.jpg'))) == 8
    # COCO's metric logs fractions, the table percentages; each distilled
    # run loaded the teacher trained first and logged its mAP (but
    # mmyolo's CWD, MMRazor's algorithm, which has no teacher evaluation).
    teacher = osp.join(work_dir, 'teacher', 'iter_4.pth')
    for index, (run, config) in enumerate(zip(demo.dirs, demo.configs)):
        if index < 2:
            continue
        rows = [r for r in read_scalars(osp.join(work_dir, run))
                if 'coco/bbox_mAP' in r]
        if 'teacher/coco/bbox_mAP' in rows[0]:
            assert rows[0]['teacher/coco/bbox_mAP'] * 100 == \
                pytest.approx(results[0]['coco/bbox_mAP'])
        else:
            assert run == 'kd_cwd'
        assert rows[-1]['coco/bbox_mAP'] * 100 == pytest.approx(
            results[index]['coco/bbox_mAP'])
        with open(osp.join(work_dir, run, config)) as f:
            assert teacher in f.read()
