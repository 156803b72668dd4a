"""The custom-data workflow of the README, end to end on a generated
3-class COCO-layout data set: train a teacher with tools/train.py on the
user's own config, then distil into a student whose config names that
config file and its checkpoint."""
import math
import os.path as osp

import pytest

from mmdist.datasets import SHAPE_CLASSES, make_coco
from tests.utils import REPO, coco_options, read_scalars, run_tool

DATA = '''
data_root = '{root}/'
metainfo = dict(classes={classes})
train_dataloader = dict(dataset=dict(data_root=data_root, metainfo=metainfo))
val_dataloader = dict(dataset=dict(data_root=data_root, metainfo=metainfo))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'annotations/instances_val2017.json')
test_evaluator = val_evaluator
'''
# score_thr=0: after two iterations no box would pass mmdet's 0.05.
TEACHER = '''_base_ = 'mmdet::retinanet/retinanet_r50_fpn_1x_coco.py'
model = dict(backbone=dict(init_cfg=None), bbox_head=dict(num_classes=3),
             test_cfg=dict(score_thr=0.0))
'''
STUDENT = '''_base_ = '{repo}/configs/dist_retinanet_r50_coco.py'
model = dict(
    architecture=dict(backbone=dict(init_cfg=None),
                      bbox_head=dict(num_classes=3),
                      test_cfg=dict(score_thr=0.0)),
    teacher=dict(cfg_path='{teacher}'),
    teacher_ckpt='{ckpt}')
'''


@pytest.fixture(scope='module')
def own_data(module_tmp):
    root = str(module_tmp('own') / 'shapes')
    make_coco(root, num_train=4, num_val=2, image_size=(128, 128),
              shape_classes=True)
    return root


def test_teacher_from_own_config_then_distil(own_data, tmp_path):
    data = DATA.format(root=own_data, classes=SHAPE_CLASSES)
    teacher_cfg = tmp_path / 'my_teacher.py'
    teacher_cfg.write_text(TEACHER + data)
    options = ['--cfg-options', *coco_options(own_data)]
    teacher_dir = str(tmp_path / 'my_teacher')
    run_tool(['tools/train.py', str(teacher_cfg), '--work-dir', teacher_dir,
              *options])
    ckpt = osp.join(teacher_dir, 'epoch_1.pth')
    teacher_val = [r for r in read_scalars(teacher_dir)
                   if 'coco/bbox_mAP' in r][-1]

    student_cfg = tmp_path / 'dist_my_student.py'
    student_cfg.write_text(
        STUDENT.format(repo=REPO, teacher=teacher_cfg, ckpt=ckpt) + data)
    student_dir = str(tmp_path / 'dist_my_student')
    run_tool(['tools/train.py', str(student_cfg), '--work-dir', student_dir,
              *options])
    rows = read_scalars(student_dir)
    losses = [r for r in rows if 'loss' in r]
    assert losses
    for key in ['distill.loss_cls'] + [f'distill.cls_l{i}' for i in range(5)]:
        assert all(math.isfinite(r[key]) for r in losses)
    # The teacher is the 3-class model of the user's config with its
    # trained weights, scored at the first validation as in its own
    # training run.
    val = [r for r in rows if 'coco/bbox_mAP' in r][0]
    assert val['teacher/coco/bbox_mAP'] == teacher_val['coco/bbox_mAP']
    assert val['teacher/coco/bbox_mAP_50'] == teacher_val['coco/bbox_mAP_50']
