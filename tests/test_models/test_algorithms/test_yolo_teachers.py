"""mmyolo teachers that do not fit their student are refused when the model
is built, with what differs: classes, priors, normalisation."""
import os.path as osp

import pytest
from mmengine.config import Config
from mmengine.registry import init_default_scope

import mmdist  # noqa: F401
from mmdist.registry import MODELS
from tests.utils import REPO


def build(config: str, teacher: dict):
    cfg = Config.fromfile(osp.join(REPO, 'configs', 'yolo', config))
    cfg.model.architecture.backbone.init_cfg = None
    cfg.model.teacher.update(backbone=dict(init_cfg=None), **teacher)
    cfg.model.teacher_ckpt = None
    init_default_scope('mmyolo')
    return MODELS.build(cfg.model)


@pytest.mark.parametrize('config, teacher, message', [
    ('dist_rtmdet-tiny_rtmdet-s_coco.py',
     dict(bbox_head=dict(head_module=dict(num_classes=3))),
     r'student and teacher must predict the same classes, but the student '
     r'bbox_head has num_classes=80 and the teacher bbox_head has '
     r'num_classes=3'),
    ('dist_yolov5-s_yolov5-l_coco.py',
     dict(bbox_head=dict(prior_generator=dict(base_sizes=[
         [(12, 16), (19, 36), (40, 28)], [(36, 75), (76, 55), (72, 146)],
         [(142, 110), (192, 243), (459, 401)]]))),
     r"the teacher's anchor layout differs from the student's"),
    ('dist_rtmdet-tiny_rtmdet-s_coco.py',
     dict(data_preprocessor=dict(mean=[0., 0., 0.], std=[255., 255., 255.],
                                 bgr_to_rgb=True)),
     r'the two configs normalise images differently: student mean/std/'
     r'bgr_to_rgb \(\[103\.5'),
], ids=['classes', 'priors', 'normalisation'])
def test_a_teacher_that_does_not_fit_is_refused(config, teacher, message):
    with pytest.raises(ValueError, match=message):
        build(config, teacher)


def test_a_fitting_teacher_builds():
    model = build('dist_yolox-s_yolox-l_coco.py', {})
    assert type(model).__name__ == 'FrozenTeacherDistill'
    assert not any(p.requires_grad for p in model.teacher.parameters())
