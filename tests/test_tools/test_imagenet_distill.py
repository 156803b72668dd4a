"""The classification tool path on generated ImageNet-layout data: a
teacher trained from the user's own config, a DIST student trained with
tools/train.py (the teacher's top-1 logged at its first validation),
tools/test.py --teacher, and the converted student evaluated by
mmpretrain's own tools/test.py; then the strong recipe (RMSpropTF, EMA,
RandAugment) through tools/train.py."""
import os.path as osp

import pytest
import torch

from mmdist.datasets import IMAGENET_WNIDS, make_imagenet
from tests.utils import (REPO, check_stock_tool_agrees, read_scalars,
                         read_test_metrics, run_tool)

CLASSES = IMAGENET_WNIDS[:4]
DATA = '''
data_root = '{root}/'
metainfo = dict(classes={classes})
train_dataloader = dict(dataset=dict(data_root=data_root, metainfo=metainfo))
val_dataloader = dict(dataset=dict(data_root=data_root, metainfo=metainfo))
test_dataloader = val_dataloader
data_preprocessor = dict(num_classes={num})
val_evaluator = dict(topk=(1, ))
test_evaluator = val_evaluator
'''
TEACHER = '''_base_ = 'mmpretrain::resnet/resnet34_8xb32_in1k.py'
model = dict(head=dict(num_classes={num}, topk=(1, )))
'''
STUDENT = '''_base_ = '{repo}/configs/dist_resnet18_in1k.py'
model = dict(
    architecture=dict(head=dict(num_classes={num}, topk=(1, ))),
    teacher=dict(cfg_path='{teacher}'),
    teacher_ckpt='{ckpt}')
'''
TOP1 = 'accuracy/top1'


def small(root: str = None):
    """--cfg-options that shrink an ImageNet config for CPU: 32 px crops,
    batches of 4, one worker-less epoch, logging every iteration (and the
    data under ``root``)."""
    options = [
        'train_dataloader.dataset.pipeline.1.scale=32',
        'val_dataloader.dataset.pipeline.1.scale=36',
        'val_dataloader.dataset.pipeline.2.crop_size=32',
        'test_dataloader.dataset.pipeline.1.scale=36',
        'test_dataloader.dataset.pipeline.2.crop_size=32',
        'train_dataloader.batch_size=4', 'val_dataloader.batch_size=4',
        'test_dataloader.batch_size=4', 'train_cfg.max_epochs=1',
        'default_hooks.logger.interval=1'
    ]
    for split in ('train', 'val', 'test'):
        options += [f'{split}_dataloader.num_workers=0',
                    f'{split}_dataloader.persistent_workers=False']
        if root:
            options += [
                f'{split}_dataloader.dataset.data_root={root}/',
                f'{split}_dataloader.dataset.metainfo.classes={CLASSES}'
            ]
    if root:  # a stock config: its top-5 needs 5 classes or more
        options += ['val_evaluator.topk=(1,)', 'test_evaluator.topk=(1,)']
    return options


@pytest.fixture(scope='module')
def trained(module_tmp):
    """A teacher trained from the user's own config, then a DIST student
    distilled from it, both through tools/train.py."""
    tmp = module_tmp('imagenet')
    root = str(tmp / 'imagenet')
    make_imagenet(root, num_train=4, num_val=2, image_size=(40, 40),
                  num_classes=len(CLASSES))
    data = DATA.format(root=root, classes=CLASSES, num=len(CLASSES))
    teacher_cfg = tmp / 'my_teacher.py'
    teacher_cfg.write_text(TEACHER.format(num=len(CLASSES)) + data)
    teacher_dir = str(tmp / 'my_teacher')
    run_tool(['tools/train.py', str(teacher_cfg), '--work-dir', teacher_dir,
              '--cfg-options', *small()])
    ckpt = osp.join(teacher_dir, 'epoch_1.pth')
    student_cfg = tmp / 'dist_my_student.py'
    student_cfg.write_text(
        STUDENT.format(repo=REPO, teacher=teacher_cfg, ckpt=ckpt,
                       num=len(CLASSES)) + data)
    student_dir = str(tmp / 'dist_my_student')
    run_tool(['tools/train.py', str(student_cfg), '--work-dir', student_dir,
              '--cfg-options', *small()])
    return dict(root=root, teacher_cfg=str(teacher_cfg), teacher_ckpt=ckpt,
                teacher_dir=teacher_dir, student_cfg=str(student_cfg),
                student_dir=student_dir, tmp=tmp)


def validations(work_dir):
    return [r for r in read_scalars(work_dir) if TOP1 in r]


def test_first_validation_logs_the_teachers_top1(trained):
    teacher = validations(trained['teacher_dir'])[-1]
    student = validations(trained['student_dir'])
    assert len(student) == 1
    # The teacher, evaluated on the same data, scores what it scored at the
    # end of its own training; the student's top-1 is logged beside it.
    assert student[0][f'teacher/{TOP1}'] == teacher[TOP1]
    assert 0 <= student[0][TOP1] <= 100
    losses = [r for r in read_scalars(trained['student_dir'])
              if 'distill.loss_cls' in r]
    assert losses and all('student.loss' in r for r in losses)


@pytest.mark.parametrize('fold_bn', [True, False])
def test_tools_test_evaluates_the_teacher_alone(trained, tmp_path, fold_bn):
    # Folded (the default, as the distillation runs it) or not, the teacher
    # scores what its own training's last validation scored.
    teacher = validations(trained['teacher_dir'])[-1]
    out = str(tmp_path / 'teacher')
    run_tool(['tools/test.py', trained['student_cfg'], '--teacher',
              '--work-dir', out, '--cfg-options', *small(),
              f'model.teacher_fold_bn={fold_bn}'])
    assert read_test_metrics(out)[TOP1] == teacher[TOP1]


def test_stock_mmpretrain_tool_agrees_on_the_converted_student(
        trained, tmp_path):
    ckpt = osp.join(trained['student_dir'], 'epoch_1.pth')

    def same_scores(ours, theirs_pkl):
        import pickle
        with open(theirs_pkl, 'rb') as f:
            theirs = pickle.load(f)
        assert len(ours) == len(theirs) == 2 * len(CLASSES)
        for a, b in zip(ours, theirs):
            assert a['img_path'] == b['img_path']
            torch.testing.assert_close(a['pred_score'], b['pred_score'])
            assert int(a['pred_label']) == int(b['pred_label'])

    metrics = check_stock_tool_agrees(
        trained['student_cfg'], ckpt, 'mmpretrain',
        'resnet/resnet18_8xb32_in1k.py', small(trained['root']),
        [f'head.num_classes={len(CLASSES)}'], str(tmp_path), 'theirs.pkl',
        same_scores)
    # The same top-1 as the student's validation at the end of training.
    assert metrics[TOP1] == validations(trained['student_dir'])[-1][TOP1]


def test_strong_recipe_trains_through_the_tools(trained, tmp_path):
    """RMSpropTF, the warm-up and step decay, EMA, RandAugment and random
    erasing in MMEngine's Runner, two iterations; a random teacher."""
    out = str(tmp_path / 'strong')
    run_tool([
        'tools/train.py',
        osp.join(REPO, 'configs', 'dist_resnet18_resnet50-sb_in1k.py'),
        '--work-dir', out, '--cfg-options', *small(trained['root']),
        'model.teacher_ckpt=None', 'train_cfg.max_epochs=1',
        f'model.architecture.head.num_classes={len(CLASSES)}',
        f'model.teacher.head.num_classes={len(CLASSES)}',
        f'data_preprocessor.num_classes={len(CLASSES)}',
        'train_dataloader.batch_size=8'
    ])
    rows = read_scalars(out)
    train = [r for r in rows if 'distill.loss_cls' in r]
    assert len(train) == 2
    # Warm-up from lr 1e-6 over 3 epochs (of 2 iterations each here).
    assert train[0]['lr'] == pytest.approx(1e-6, rel=1e-3)
    assert 1e-6 < train[1]['lr'] < 0.048
    assert validations(out)
    state = torch.load(osp.join(out, 'epoch_1.pth'), map_location='cpu',
                       weights_only=False)
    assert 'ema_state_dict' in state
    assert state['optimizer']['param_groups'][0]['eps'] == 1e-3


def test_missing_imagenet_is_explained(tmp_path):
    work_dir = tmp_path / 'work_dir'
    proc = run_tool(
        ['tools/train.py', osp.join(REPO, 'configs', 'dist_resnet18_in1k.py'),
         '--work-dir', str(work_dir), '--cfg-options',
         f'train_dataloader.dataset.data_root={tmp_path}/none',
         f'val_dataloader.dataset.data_root={tmp_path}/gone'], check=False)
    assert proc.returncode != 0
    for text in ('data not found', f'{tmp_path}/none/train',
                 f'{tmp_path}/gone/val',
                 'ImageNet is expected under data/imagenet',
                 'meta/train.txt'):
        assert text in proc.stderr, (text, proc.stderr[-2000:])
    # Before the teacher's weights are fetched, and nothing written.
    assert 'teacher checkpoint' not in proc.stderr
    assert not work_dir.exists()
