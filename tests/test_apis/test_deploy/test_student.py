"""The student that tools/deploy.py exports: taken out of distillation
configs (a model dict, a cfg_path, several teachers), its task."""
import os.path as osp

from mmengine.config import Config

from mmdist.apis.deploy.student import (build_model, deploy_task,
                                        student_config, teacher_configs)
from tests.utils import REPO, mim_path

CONFIGS = osp.join(REPO, 'configs')


def test_a_distillation_config_gives_the_students_own():
    cfg = Config.fromfile(osp.join(CONFIGS, 'dist_retinanet_r50_coco.py'))
    student = student_config(cfg)
    stock = Config.fromfile(mim_path('mmdet', 'configs', 'retinanet',
                                     'retinanet_r50_fpn_2x_coco.py'))
    model = student.model.to_dict()
    assert model.pop('_scope_', 'mmdet') == 'mmdet'
    assert model == stock.model.to_dict()
    assert 'custom_imports' not in student
    assert not {'teacher_eval', 'random_state'} & set(student.default_hooks)
    assert student.test_pipeline == stock.test_dataloader.dataset.pipeline
    evaluator = dict(student.test_evaluator)
    assert evaluator.pop('_scope_', 'mmdet') == 'mmdet'
    assert evaluator == stock.test_evaluator
    assert [t[0] for t in teacher_configs(cfg)] == ['teacher']
    assert teacher_configs(cfg)[0][1].backbone.depth == 101


def test_a_student_given_by_cfg_path(tmp_path):
    path = tmp_path / 'dist_cfg_path.py'
    path.write_text(
        f"_base_ = '{CONFIGS}/dist_retinanet_r50_coco.py'\n"
        "model = dict(architecture=dict(_delete_=True, "
        "cfg_path='mmdet::retinanet/retinanet_r18_fpn_1x_coco.py'))\n")
    student = student_config(Config.fromfile(str(path)))
    assert student.model.type == 'RetinaNet'
    assert student.model.backbone.depth == 18


def test_each_of_several_teachers_is_named():
    cfg = Config.fromfile(
        osp.join(CONFIGS, 'dist_deeplabv3_r18_two-teachers_cityscapes.py'))
    names = [name for name, *_ in teacher_configs(cfg)]
    assert names == list(cfg.model.teachers)
    assert student_config(cfg).model.backbone.depth == 18


def test_the_task_decides_the_deploy_config():
    for config, task in (
            ('configs/demo/retinanet_r18_toy.py', 'detection'),
            ('configs/demo/resnet18_toy.py', 'classification')):
        cfg = student_config(Config.fromfile(osp.join(REPO, config)))
        model = build_model(cfg.model, cfg.default_scope)
        assert deploy_task(model, cfg) == task
    masks = Config.fromfile(mim_path('mmdet', 'configs', 'mask_rcnn',
                                     'mask-rcnn_r50_fpn_1x_coco.py'))
    masks.model.backbone.init_cfg = None
    assert deploy_task(build_model(masks.model, 'mmdet'), masks) is None
