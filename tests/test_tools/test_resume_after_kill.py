"""A run killed with SIGKILL and started again with --resume logs, from its
last checkpoint on, the losses of a run that was never killed: DIST and DIST
+ mimic (whose connectors train) on RetinaNet, through tools/train.py."""
import os.path as osp
import signal

import pytest
import torch

from tests.test_tools.test_retinanet_distill import train_options
from tests.utils import (REPO, batches, kill_during, last_run_losses, losses,
                         run_logs, run_tool)

# 4 training images, 2 a batch: 2 iterations an epoch, 2 epochs.
ITERS = 4


@pytest.fixture(scope='module')
def teacher_ckpt(retinanet_teacher_ckpt) -> str:
    """The session's random X101-64x4d RetinaNet teacher."""
    return retinanet_teacher_ckpt


def options(coco_root, teacher_ckpt):
    return train_options(coco_root, teacher_ckpt) + [
        'train_cfg.max_epochs=2', 'train_cfg.val_interval=10',
        'randomness.seed=0', 'randomness.deterministic=True',
        'default_hooks.checkpoint.interval=1',
        # Checkpoints of an R50 RetinaNet are 300 MB: keep the disk use down.
        'default_hooks.checkpoint.max_keep_ckpts=1'
    ]


def state(path):
    return torch.load(path, map_location='cpu', weights_only=False)


# mmdist's config as a user's config over it, with the hook that holds the
# run where the test kills it (it does nothing unless asked).
PAUSABLE = '''_base_ = '{repo}/{config}'
custom_imports = dict(imports=['mmdist', 'tests.record_batches'],
                      allow_failed_imports=False)
custom_hooks = [dict(type='TestPauseHook')]
'''
ENV = dict(PYTHONPATH=REPO)  # tests.record_batches


# (tests/test_tools/test_fast_resume.py kills and resumes in make test.)
@pytest.mark.parametrize('config', [
    pytest.param('configs/dist_retinanet_r50_coco.py', marks=pytest.mark.slow),
    pytest.param('configs/dist_mimic_retinanet_r50_coco.py',
                 marks=pytest.mark.slow)
])
def test_killed_run_resumes_with_the_same_losses(config, coco_root,
                                                 teacher_ckpt, tmp_path):
    pausable = tmp_path / osp.basename(config)
    pausable.write_text(PAUSABLE.format(repo=REPO, config=config))
    config = str(pausable)
    args = ['--cfg-options', *options(coco_root, teacher_ckpt)]
    never_killed = str(tmp_path / 'never_killed')
    run_tool(['tools/train.py', config, '--work-dir', never_killed, *args],
             env=ENV)
    expected = losses(never_killed)
    assert sorted(expected) == list(range(1, ITERS + 1))

    killed = str(tmp_path / 'killed')
    # Iteration 3 is the first of epoch 2: the kill lands in epoch 2, after
    # epoch_1.pth and before epoch_2.pth.
    returncode = kill_during(killed, [config, '--work-dir', killed, *args], 3,
                             env=ENV)
    assert returncode == -signal.SIGKILL
    assert osp.isfile(osp.join(killed, 'epoch_1.pth'))
    assert not osp.exists(osp.join(killed, 'epoch_2.pth'))

    resumed = run_tool(['tools/train.py', config, '--work-dir', killed,
                        '--resume', *args], env=ENV)
    assert 'resumed' in (resumed.stdout + resumed.stderr).lower()
    assert len(run_logs(killed)) == 2
    after = last_run_losses(killed)
    # The resumed run starts at the checkpoint (iteration 3) and logs what
    # the run that was never killed logged, every loss of every level.
    assert sorted(after) == list(range(3, ITERS + 1))
    names = set(expected[3])
    levels = {f'distill.cls_l{i}' for i in range(5)}
    assert {'distill.loss_cls'} | levels <= names
    if 'mimic' in config:
        assert {f'distill.loss_mimic_fpn{i}' for i in range(5)} <= names
    for iteration in after:
        assert after[iteration].keys() == expected[iteration].keys()
        for name, value in expected[iteration].items():
            assert after[iteration][name] == pytest.approx(
                value, rel=1e-6, abs=1e-7), (iteration, name)

    # Weights, connectors included, and optimizer state end the same.
    ours = state(osp.join(killed, 'epoch_2.pth'))
    theirs = state(osp.join(never_killed, 'epoch_2.pth'))
    assert ours['state_dict'].keys() == theirs['state_dict'].keys()
    connectors = [k for k in ours['state_dict'] if 'connectors' in k]
    assert bool(connectors) == ('mimic' in config)
    for key, value in theirs['state_dict'].items():
        torch.testing.assert_close(ours['state_dict'][key], value,
                                   rtol=1e-5, atol=1e-6, msg=key)
    for a, b in zip(ours['optimizer']['state'].values(),
                    theirs['optimizer']['state'].values()):
        torch.testing.assert_close(a['momentum_buffer'],
                                   b['momentum_buffer'], rtol=1e-5,
                                   atol=1e-6)


# RTMDet's DIST config with mmdet's Mosaic and MixUp, which pick the other
# images they mix with Python's random (through MultiImageMixDataset): with
# per-sample seeds a resumed run mixes the same images, whatever the worker
# count. (RTMDet's stock CachedMosaic/CachedMixUp mix from a cache of the
# images each loading process saw last, which a resumed process starts
# empty: there the first batches after a resume differ.)
RTMDET = '''_base_ = '{repo}/configs/dist_rtmdet_s_coco.py'
custom_imports = dict(imports=['mmdist', 'tests.record_batches'],
                      allow_failed_imports=False)
custom_hooks = _base_.custom_hooks + [
    dict(type='TestRecordBatchesHook'), dict(type='TestPauseHook')]
model = dict(
    architecture=dict(backbone=dict(init_cfg=None)),
    teacher=dict(cfg_path='mmdet::rtmdet/rtmdet_s_8xb32-300e_coco.py',
                 backbone=dict(init_cfg=None)),
    teacher_ckpt=None)
data_root = '{root}/'
train_dataloader = dict(
    batch_size=2, num_workers={workers}, persistent_workers={persistent},
    dataset=dict(
        _delete_=True,
        type='MultiImageMixDataset',
        dataset=dict(
            type='CocoDataset', data_root=data_root,
            ann_file='annotations/instances_train2017.json',
            data_prefix=dict(img='train2017/'),
            filter_cfg=dict(filter_empty_gt=False),
            pipeline=[dict(type='LoadImageFromFile'),
                      dict(type='LoadAnnotations', with_bbox=True)]),
        pipeline=[
            dict(type='Mosaic', img_scale=(64, 64), pad_val=114.0),
            dict(type='RandomAffine', scaling_ratio_range=(0.5, 1.5),
                 border=(-32, -32)),
            dict(type='MixUp', img_scale=(64, 64), ratio_range=(0.8, 1.6),
                 pad_val=114.0),
            dict(type='YOLOXHSVRandomAug'),
            dict(type='RandomFlip', prob=0.5),
            dict(type='PackDetInputs')
        ]))
val_dataloader = dict(num_workers=0, persistent_workers=False,
                      dataset=dict(data_root=data_root))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root +
                     'annotations/instances_val2017.json')
test_evaluator = val_evaluator
train_cfg = dict(max_epochs=2, val_interval=10)
default_hooks = dict(logger=dict(interval=1),
                     checkpoint=dict(interval=1, max_keep_ckpts=1))
randomness = dict(seed=0, deterministic=True)
'''


# (RTMDet-tiny's Mosaic and MixUp resume in test_yolo.py in make test.)
@pytest.mark.slow
@pytest.mark.parametrize('workers', [0, 2])
def test_mosaic_and_mixup_resume_exactly(workers, coco_root, tmp_path):
    config = tmp_path / 'dist_rtmdet_mosaic.py'
    config.write_text(RTMDET.format(repo=REPO, root=coco_root,
                                    workers=workers,
                                    persistent=workers > 0))
    never_killed = str(tmp_path / 'never_killed')
    run_tool(['tools/train.py', str(config), '--work-dir', never_killed],
             env=ENV)
    expected = losses(never_killed)
    assert sorted(expected) == list(range(1, ITERS + 1))
    killed = str(tmp_path / 'killed')
    args = [str(config), '--work-dir', killed]
    assert kill_during(killed, args, 3, env=ENV) == -signal.SIGKILL
    run_tool(['tools/train.py', *args, '--resume'], env=ENV)
    after = last_run_losses(killed)
    assert sorted(after) == list(range(3, ITERS + 1))
    assert 'distill.loss_cls' in after[3]
    assert {i: expected[i] for i in after} == after
    assert batches(killed) == batches(never_killed)
