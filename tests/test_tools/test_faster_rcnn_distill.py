"""End to end on CPU: configs/dist_faster_rcnn_r50_coco.py through the tools
(Cascade Mask R-CNN X101-64x4d teacher, Faster R-CNN R50 student)."""
import math
import os.path as osp
import re

import pytest
from tests.utils import (REPO, check_stock_tool_agrees, coco_options,
                         compare_detections, read_scalars, read_test_metrics,
                         run_tool, save_random_model)

CONFIG = 'configs/dist_faster_rcnn_r50_coco.py'
TEACHER = 'mmdet::cascade_rcnn/cascade-mask-rcnn_x101-64x4d_fpn_20e_coco.py'


@pytest.fixture(scope='module')
def teacher_ckpt(module_tmp) -> str:
    return save_random_model(
        TEACHER, str(module_tmp('teacher') / 'teacher.pth'))


def test_train_convert_and_evaluate(coco_root, teacher_ckpt, tmp_path):
    work_dir = str(tmp_path / 'work_dir')
    run_tool(['tools/train.py', CONFIG, '--work-dir', work_dir,
              '--cfg-options', *coco_options(coco_root),
              'model.architecture.backbone.init_cfg=None',
              f'model.teacher_ckpt={teacher_ckpt}'])
    rows = [r for r in read_scalars(work_dir) if 'loss' in r]
    assert len(rows) == 2
    for row in rows:
        for key in ('distill.loss_roi_cls', 'distill.roi_cls_inter',
                    'distill.roi_cls_intra', 'student.loss_cls'):
            assert math.isfinite(row[key]), (key, row)
    ckpt = osp.join(work_dir, 'epoch_1.pth')
    metrics = check_stock_tool_agrees(
        CONFIG, ckpt, 'mmdet', 'faster_rcnn/faster-rcnn_r50_fpn_2x_coco.py',
        coco_options(coco_root), ['test_cfg.rcnn.score_thr=0.0'],
        str(tmp_path), 'theirs.pkl', compare_detections)
    assert 'coco/bbox_mAP' in metrics


def test_teacher_alone_evaluates_boxes_and_masks(coco_root, teacher_ckpt,
                                                 tmp_path):
    # tools/test.py --teacher: the Cascade Mask R-CNN teacher's own test
    # (its mask head included) on mmdist's ops, scored as its config
    # scores it.
    out = str(tmp_path / 'teacher')
    run_tool(['tools/test.py', CONFIG, teacher_ckpt, '--teacher',
              '--work-dir', out, '--cfg-options', *coco_options(coco_root),
              'model.teacher.test_cfg.rcnn.score_thr=0.0'])
    metrics = read_test_metrics(out)
    assert {'coco/bbox_mAP', 'coco/segm_mAP'} <= set(metrics), metrics


def docs_block(heading: str) -> str:
    """The first ```python block under ``heading`` in docs/configs.md."""
    with open(osp.join(REPO, 'docs', 'configs.md')) as f:
        text = f.read()
    section = text[text.index(f'## {heading}\n'):]
    return re.search(r'```python\n(.*?)```', section, flags=re.S).group(1)


@pytest.mark.slow
def test_the_two_stage_recipe_of_the_docs_trains(coco_root, teacher_ckpt,
                                                 tmp_path):
    """docs/configs.md's Mask R-CNN student from a Cascade Mask R-CNN
    teacher, as written, on generated COCO data with masks."""
    recipe = docs_block('A two-stage student')
    assert TEACHER.split('::')[1].split('/')[1] in recipe.replace(
        "'\n                 '", '')
    config = tmp_path / 'dist_mask_rcnn_r50_coco.py'
    config.write_text(recipe.replace(
        '/path/to/cascade_mask_rcnn_x101_64x4d.pth', teacher_ckpt))
    work_dir = str(tmp_path / 'work_dir')
    run_tool(['tools/train.py', str(config), '--work-dir', work_dir,
              '--cfg-options', *coco_options(coco_root),
              'model.architecture.backbone.init_cfg=None',
              # (random weights: boxes and masks to score)
              'model.architecture.test_cfg.rcnn.score_thr=0.0'])
    rows = [r for r in read_scalars(work_dir) if 'loss' in r]
    assert len(rows) == 2
    for row in rows:
        for key in ('distill.loss_roi_cls', 'student.loss_mask',
                    'student.loss_cls'):
            assert math.isfinite(row[key]), (key, row)
    metrics = [r for r in read_scalars(work_dir) if 'coco/segm_mAP' in r]
    assert metrics, 'the epoch ends with a validation of boxes and masks'
