"""End to end on CPU: configs/dist_retinanet_r50_coco.py through the tools.

The real config (X101-64x4d teacher, R50 student) on a generated COCO-layout
data set, shrunk only through --cfg-options: 128 px images, 2 images a
batch, one epoch of 2 iterations.
"""
import math
import os
import os.path as osp
import subprocess
import sys

import pytest
import torch

from tests.utils import (REPO, check_stock_tool_agrees, coco_options,
                         compare_detections, read_scalars, run_tool,
                         save_random_model)

CONFIG = 'configs/dist_retinanet_r50_coco.py'
LEVELS = (3, 4, 5, 6, 7)


@pytest.fixture(scope='module')
def teacher_ckpt(retinanet_teacher_ckpt) -> str:
    """The session's random X101-64x4d RetinaNet teacher."""
    return retinanet_teacher_ckpt


def train_options(coco_root, teacher_ckpt):
    return coco_options(coco_root) + [
        'model.architecture.backbone.init_cfg=None',
        f'model.teacher_ckpt={teacher_ckpt}',
        'model.architecture.test_cfg.score_thr=0.0',
    ]


@pytest.fixture(scope='module')
def trained(module_tmp, coco_root, teacher_ckpt):
    """Train one epoch with a checkpoint every iteration, then resume into a
    second epoch."""
    work_dir = str(module_tmp('dist_retinanet'))
    options = train_options(coco_root, teacher_ckpt) + [
        'default_hooks.checkpoint.by_epoch=False',
        'default_hooks.checkpoint.interval=1',
    ]
    run_tool(['tools/train.py', CONFIG, '--work-dir', work_dir,
              '--cfg-options', *options])
    first_run = read_scalars(work_dir)
    resumed = run_tool(['tools/train.py', CONFIG, '--work-dir', work_dir,
                        '--resume', '--cfg-options', *options,
                        'train_cfg.max_epochs=2'])
    return dict(work_dir=work_dir, first_run=first_run,
                resume_log=resumed.stdout + resumed.stderr)


def test_every_level_logs_a_finite_dist_loss(trained):
    rows = [r for r in trained['first_run'] if 'loss' in r]
    assert len(rows) == 2  # two iterations
    for row in rows:
        for key in ['distill.loss_cls', 'distill.cls_inter',
                    'distill.cls_intra'] + [f'distill.cls_l{i}'
                                            for i in range(len(LEVELS))]:
            assert math.isfinite(row[key]), (key, row)
        assert math.isfinite(row['student.loss_cls'])
    # MMEngine logs losses averaged over a window and other values as they
    # are: on the first iteration both are that iteration's.
    assert rows[0]['distill.loss_cls'] == pytest.approx(
        rows[0]['distill.cls_inter'] + rows[0]['distill.cls_intra'],
        abs=1e-4)
    assert rows[0]['distill.loss_cls'] == pytest.approx(
        sum(rows[0][f'distill.cls_l{i}'] for i in range(len(LEVELS))),
        abs=1e-4)


def _load(path):
    return torch.load(path, map_location='cpu', weights_only=True)


def test_student_learns_and_the_teacher_is_not_saved(trained):
    first = _load(osp.join(trained['work_dir'], 'iter_1.pth'))['state_dict']
    second = _load(osp.join(trained['work_dir'], 'iter_2.pth'))['state_dict']
    student_keys = [k for k in first if k.startswith('architecture.')
                    and first[k].is_floating_point()]
    assert student_keys
    changed = [k for k in student_keys if not torch.equal(first[k], second[k])]
    assert any('bbox_head.retina_cls' in k for k in changed)
    assert any('backbone' in k for k in changed)
    # The teacher, loaded from teacher_ckpt, is not saved again.
    assert not any(k.startswith('teacher.') for k in first)


def test_resume_continues_from_the_last_checkpoint(trained):
    assert 'resumed' in trained['resume_log'].lower()
    iters = [r['iter'] for r in read_scalars(trained['work_dir'])
             if 'loss' in r]
    # The first run did iterations 1-2; the resumed one goes on from 3 (an
    # epoch-based loop resumed from an iteration checkpoint replays the
    # interrupted epoch), never restarting the count.
    assert iters[:2] == [1, 2] and iters[2] == 3
    assert iters == sorted(set(iters))
    assert osp.isfile(osp.join(trained['work_dir'], f'iter_{iters[-1]}.pth'))


def test_converted_student_evaluates_the_same_with_mmdet_test_tool(
        trained, coco_root, tmp_path):
    with open(osp.join(trained['work_dir'], 'last_checkpoint')) as f:
        ckpt = f.read().strip()
    metrics = check_stock_tool_agrees(
        CONFIG, ckpt, 'mmdet', 'retinanet/retinanet_r50_fpn_2x_coco.py',
        coco_options(coco_root), ['test_cfg.score_thr=0.0'], str(tmp_path),
        'theirs.pkl', compare_detections)
    assert 'coco/bbox_mAP' in metrics


@pytest.mark.slow
def test_dist_train_sh_runs_two_cpu_processes(coco_root, teacher_ckpt,
                                              tmp_path):
    work_dir = str(tmp_path / 'ddp')
    env = dict(os.environ, PYTHON=sys.executable,
               PORT='29613', OMP_NUM_THREADS='1', PYTHONWARNINGS='ignore')
    proc = subprocess.run(
        ['bash', 'tools/dist_train.sh', CONFIG, '2', '--work-dir', work_dir,
         '--cfg-options', *train_options(coco_root, teacher_ckpt),
         'train_dataloader.batch_size=1'],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-6000:]
    assert 'Distributed launcher: pytorch' in proc.stdout + proc.stderr
    assert osp.isfile(osp.join(work_dir, 'epoch_1.pth'))
    rows = [r for r in read_scalars(work_dir) if 'loss' in r]
    assert rows and all(math.isfinite(r['distill.loss_cls']) for r in rows)


@pytest.fixture(scope='module')
def student_weights(module_tmp) -> str:
    """Weights of the R50 student, which do not fit the X101 teacher."""
    return save_random_model(
        'mmdet::retinanet/retinanet_r50_fpn_2x_coco.py',
        str(module_tmp('student') / 'r50.pth'))


@pytest.mark.parametrize('case', [
    'no_data', 'no_teacher_ckpt', 'unreadable_teacher_ckpt',
    'teacher_ckpt_of_another_model', 'class_mismatch', 'amp_without_gpu'
])
def test_bad_input_fails_before_training_and_leaves_nothing(
        case, coco_root, teacher_ckpt, student_weights, tmp_path):
    garbage = tmp_path / 'garbage.pth'
    garbage.write_bytes(b'not a checkpoint')
    options = train_options(coco_root, teacher_ckpt)
    expected = {
        'no_data': ['data not found', 'data/coco/annotations/instances_'
                    'train2017.json', 'COCO is expected under data/coco',
                    '--cfg-options'],
        'no_teacher_ckpt': ['teacher checkpoint not found',
                            'model.teacher_ckpt'],
        'unreadable_teacher_ckpt': ['could not read the teacher checkpoint'],
        'teacher_ckpt_of_another_model': ['does not fit the teacher',
                                          'missing keys', 'shape mismatch'],
        'class_mismatch': ['num_classes=3', 'num_classes=80'],
        'amp_without_gpu': ['--amp needs an accelerator'],
    }[case]
    if case == 'amp_without_gpu' and torch.cuda.is_available():
        pytest.skip('this machine has a GPU')
    flags = ['--amp'] if case == 'amp_without_gpu' else []
    if case == 'no_data':
        options = [o for o in options if 'data_root' not in o]
    elif case != 'amp_without_gpu':
        options.append({
            'no_teacher_ckpt': f'model.teacher_ckpt={tmp_path}/missing.pth',
            'unreadable_teacher_ckpt': f'model.teacher_ckpt={garbage}',
            'teacher_ckpt_of_another_model':
            f'model.teacher_ckpt={student_weights}',
            'class_mismatch': 'model.architecture.bbox_head.num_classes=3',
        }[case])
    work_dir = tmp_path / 'work_dir'
    proc = run_tool(['tools/train.py', CONFIG, '--work-dir', str(work_dir),
                     *flags, '--cfg-options', *options], check=False)
    assert proc.returncode != 0
    for text in expected:
        assert text in proc.stderr, (text, proc.stderr[-3000:])
    assert not work_dir.exists()


def test_stock_student_initialises_from_torchvision(coco_root, teacher_ckpt,
                                                    tmp_path):
    """The headline command with the stock student init
    (``torchvision://resnet50``): the torchvision model table resolves and
    the ImageNet weights are read from torch's hub cache, where a download
    would put them (none can happen here)."""
    import torchvision
    from mmengine.runner.checkpoint import get_torchvision_models
    url = get_torchvision_models()['resnet50']
    assert url.startswith('https://download.pytorch.org/models/resnet50')
    torch_home = tmp_path / 'torch_home'
    cache = torch_home / 'hub' / 'checkpoints'
    cache.mkdir(parents=True)
    torch.manual_seed(1)
    imagenet = torchvision.models.resnet50().state_dict()
    torch.save(imagenet, cache / osp.basename(url))

    work_dir = str(tmp_path / 'work_dir')
    options = [o for o in train_options(coco_root, teacher_ckpt)
               if not o.startswith('model.architecture.backbone.init_cfg')]
    run_tool(['tools/train.py', CONFIG, '--work-dir', work_dir,
              '--cfg-options', *options],
             env=dict(TORCH_HOME=str(torch_home)))
    student = _load(osp.join(work_dir, 'epoch_1.pth'))['state_dict']
    # conv1 and layer1 are frozen (frozen_stages=1): still ImageNet's.
    for name in ('conv1.weight', 'layer1.0.conv1.weight'):
        assert torch.equal(
            student[f'architecture.backbone.{name}'], imagenet[name])


def test_broken_teacher_stops_training_at_its_first_iteration(
        coco_root, teacher_ckpt, tmp_path):
    broken = _load(teacher_ckpt)
    broken['state_dict']['bbox_head.retina_cls.bias'][:] = float('inf')
    path = str(tmp_path / 'broken_teacher.pth')
    torch.save(broken, path)
    work_dir = str(tmp_path / 'work_dir')
    proc = run_tool(['tools/train.py', CONFIG, '--work-dir', work_dir,
                     '--cfg-options', *train_options(coco_root, path)],
                    check=False)
    assert proc.returncode != 0
    assert ('FloatingPointError: distillation loss loss_cls reads NaN or '
            "Inf from the teacher's 'logits_cls' record (level 0) at training "
            'iteration 1') in proc.stderr
    assert not os.path.exists(osp.join(work_dir, 'epoch_1.pth'))
