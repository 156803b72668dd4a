"""A student that starts from its own trained weights (model.student_ckpt),
through tools/train.py: a checkpoint of the student's stock config, saved
by its own library's Runner, is what the distilled student starts from
(detector, segmentor, classifier); on --resume the resumed weights win; a
checkpoint of another model, or a stock checkpoint given as load_from,
stops the tool before any work, saying what to do."""
import glob
import os.path as osp

import pytest
import torch

from mmdist.datasets import make_cityscapes, make_coco, make_imagenet
from tests.utils import (REPO, coco_options, last_run_losses, losses,
                         mim_path, run_tool, save_random_model)

SEG_DATA = '''
data_root = '{root}/'
train_dataloader = dict(batch_size=2, dataset=dict(data_root=data_root))
val_dataloader = dict(dataset=dict(data_root=data_root))
test_dataloader = val_dataloader
train_cfg = dict(max_iters={iters}, val_interval=100)
param_scheduler = [dict(type='ConstantLR', factor=1.0, by_epoch=False)]
default_hooks = dict(logger=dict(interval=1),
                     checkpoint=dict(interval=2, max_keep_ckpts=3))
randomness = dict(seed=0, deterministic=True)
'''
# The demo's Cityscapes configs: the student alone, and DIST from a random
# R18-D8 teacher (fast).
SEG_STUDENT = "_base_ = '{repo}/configs/demo/deeplabv3_r18_toy.py'" + SEG_DATA
SEG_DIST = '''_base_ = '{repo}/configs/demo/dist_deeplabv3_r18_toy.py'
model = dict(
    teacher=dict(cfg_path='{repo}/configs/demo/deeplabv3_r18_toy.py'),
    teacher_ckpt=None)
''' + SEG_DATA

CLS_DATA = '''
data_root = '{root}/'
train_dataloader = dict(batch_size=4, dataset=dict(data_root=data_root))
val_dataloader = dict(batch_size=4, dataset=dict(data_root=data_root))
test_dataloader = val_dataloader
train_cfg = dict(max_iters=2, val_interval=100)
# No eta_min: with lr=0 the weights must stay where they start.
param_scheduler = [dict(type='ConstantLR', factor=1.0, by_epoch=False)]
default_hooks = dict(logger=dict(interval=1), checkpoint=dict(interval=2))
'''
CLS_STUDENT = "_base_ = '{repo}/configs/demo/resnet18_toy.py'" + CLS_DATA
CLS_DIST = '''_base_ = '{repo}/configs/demo/dist_resnet18_toy.py'
model = dict(teacher_ckpt=None)
''' + CLS_DATA

DET_STUDENT = 'retinanet/retinanet_r50_fpn_2x_coco.py'
DET_DIST = 'configs/dist_retinanet_r50_coco.py'
NO_IMAGENET = 'model.backbone.init_cfg=None'
FROZEN = 'optim_wrapper.optimizer.lr=0'  # the weights stay where they start


def parameters(checkpoint: str, prefix: str = '') -> dict:
    """The trainable weights (no BN statistics) in a checkpoint, by the
    student's own names."""
    state = torch.load(checkpoint, map_location='cpu',
                       weights_only=False)['state_dict']
    return {k[len(prefix):]: v for k, v in state.items()
            if k.startswith(prefix) and not k.endswith(
                ('running_mean', 'running_var', 'num_batches_tracked'))}


@pytest.fixture(scope='module')
def seg(module_tmp):
    """The segmentation set-up: configs, and a student trained alone with
    tools/train.py (its checkpoint as mmseg's Runner saves it)."""
    tmp = module_tmp('student_ckpt_seg')
    root = str(tmp / 'cityscapes')
    make_cityscapes(root, num_train=4, num_val=2, image_size=(64, 128))
    student_cfg, dist_cfg = tmp / 'student.py', tmp / 'dist.py'
    student_cfg.write_text(SEG_STUDENT.format(repo=REPO, root=root, iters=2))
    dist_cfg.write_text(SEG_DIST.format(repo=REPO, root=root, iters=4))
    student_dir = str(tmp / 'student')
    run_tool(['tools/train.py', str(student_cfg), '--work-dir',
              student_dir])
    return dict(tmp=tmp, dist=str(dist_cfg),
                ckpt=osp.join(student_dir, 'iter_2.pth'))


def distil_frozen(config, ckpt, work_dir, *options):
    run_tool(['tools/train.py', config, '--work-dir', work_dir,
              '--cfg-options', f'model.student_ckpt={ckpt}', FROZEN,
              *options])


def assert_starts_from(student_ckpt, work_dir, distilled_ckpt):
    start = parameters(student_ckpt)
    distilled = parameters(osp.join(work_dir, distilled_ckpt),
                           'architecture.')
    assert start.keys() == distilled.keys() and start
    for key, value in start.items():
        assert torch.equal(distilled[key], value), key
    log, = glob.glob(osp.join(work_dir, '*', '*.log'))
    with open(log) as f:
        assert f'the student starts from {student_ckpt}' in f.read()


def test_segmentor_starts_from_its_checkpoint(seg):
    work_dir = str(seg['tmp'] / 'dist_frozen')
    distil_frozen(seg['dist'], seg['ckpt'], work_dir,
                  'train_cfg.max_iters=2')
    assert_starts_from(seg['ckpt'], work_dir, 'iter_2.pth')
    # Without it the student starts elsewhere (the test can tell).
    plain = str(seg['tmp'] / 'dist_plain')
    run_tool(['tools/train.py', seg['dist'], '--work-dir', plain,
              '--cfg-options', FROZEN, 'train_cfg.max_iters=2'])
    start = parameters(seg['ckpt'])
    elsewhere = parameters(osp.join(plain, 'iter_2.pth'), 'architecture.')
    assert not any(torch.equal(elsewhere[k], v) for k, v in start.items()
                   if k.startswith('backbone.'))


def test_on_resume_the_resumed_weights_win(seg):
    # An uninterrupted run from the student checkpoint, then one resumed at
    # iteration 2 of it: its losses are the uninterrupted run's, so the
    # resumed weights, not student_ckpt's, are what it trained on.
    whole = str(seg['tmp'] / 'whole')
    args = ['--cfg-options', f'model.student_ckpt={seg["ckpt"]}']
    run_tool(['tools/train.py', seg['dist'], '--work-dir', whole, *args])
    resumed = str(seg['tmp'] / 'resumed')
    run_tool(['tools/train.py', seg['dist'], '--work-dir', resumed,
              '--resume', osp.join(whole, 'iter_2.pth'), *args])
    expected = {i: v for i, v in losses(whole).items() if i > 2}
    assert sorted(expected) == [3, 4]
    assert last_run_losses(resumed) == expected


@pytest.mark.parametrize('option', ['student_ckpt', 'load_from'])
def test_another_models_checkpoint_stops_before_any_work(seg, option):
    if option == 'student_ckpt':
        # The R101-D8 teacher's weights are not the R18-D8 student's.
        teacher = str(seg['tmp'] / 'teacher.pth')
        save_random_model(
            'mmseg::deeplabv3/deeplabv3_r101-d8_4xb2-40k_cityscapes-'
            '512x1024.py', teacher)
        args = [f'model.student_ckpt={teacher}']
        said = ['the student checkpoint', 'does not fit the student',
                'unexpected keys', 'shape mismatch (checkpoint vs student)',
                'model.student_ckpt must be a checkpoint of '
                "the student's own config"]
    else:
        # The student's own weights, given as load_from: MMEngine would
        # load nothing into the distillation model.
        args = [f'load_from={seg["ckpt"]}']
        said = [f'load_from={seg["ckpt"]} holds the weights of a model '
                'alone', f'model.student_ckpt={seg["ckpt"]}']
    work_dir = seg['tmp'] / f'refused_{option}'
    result = run_tool(['tools/train.py', seg['dist'], '--work-dir',
                       str(work_dir), '--cfg-options', *args], check=False)
    assert result.returncode != 0
    for text in said:
        assert text in result.stderr, result.stderr[-3000:]
    assert not work_dir.exists()


def test_detector_starts_from_its_checkpoint(module_tmp,
                                             retinanet_teacher_ckpt):
    tmp = module_tmp('student_ckpt_det')
    root = str(tmp / 'coco')
    make_coco(root, num_train=2, num_val=1, image_size=(128, 128))
    options = coco_options(root)
    student_dir = str(tmp / 'student')
    run_tool(['tools/train.py',
              mim_path('mmdet', 'configs', DET_STUDENT), '--work-dir',
              student_dir, '--cfg-options', *options, NO_IMAGENET])
    ckpt = osp.join(student_dir, 'epoch_1.pth')
    work_dir = str(tmp / 'dist')
    distil_frozen(DET_DIST, ckpt, work_dir, *options,
                  f'model.teacher_ckpt={retinanet_teacher_ckpt}',
                  'model.architecture.backbone.init_cfg=None')
    assert_starts_from(ckpt, work_dir, 'epoch_1.pth')


def test_classifier_starts_from_its_checkpoint(module_tmp):
    tmp = module_tmp('student_ckpt_cls')
    root = str(tmp / 'imagenet')
    make_imagenet(root, num_train=4, num_val=2, image_size=(32, 32))
    student_cfg, dist_cfg = tmp / 'student.py', tmp / 'dist.py'
    student_cfg.write_text(CLS_STUDENT.format(repo=REPO, root=root))
    dist_cfg.write_text(CLS_DIST.format(repo=REPO, root=root))
    student_dir = str(tmp / 'student')
    run_tool(['tools/train.py', str(student_cfg), '--work-dir',
              student_dir])
    ckpt = osp.join(student_dir, 'iter_2.pth')
    work_dir = str(tmp / 'dist')
    distil_frozen(str(dist_cfg), ckpt, work_dir)
    assert_starts_from(ckpt, work_dir, 'iter_2.pth')
