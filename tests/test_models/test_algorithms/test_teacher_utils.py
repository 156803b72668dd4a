"""teacher_config: a teacher from a stock or a local config, with
overrides."""
import pytest

import mmdist  # noqa: F401
from mmdist.models.algorithms import FrozenTeacherDistill, teacher_config

STOCK = 'mmdet::retinanet/retinanet_r50_fpn_1x_coco.py'


def test_stock_config_with_overrides():
    plain = teacher_config(dict(cfg_path=STOCK, pretrained=False))
    cfg = teacher_config(dict(cfg_path=STOCK, pretrained=False,
                              bbox_head=dict(num_classes=3)))
    assert plain.model.bbox_head.num_classes == 80
    assert cfg.model.bbox_head.num_classes == 3
    # Merged, not replaced: the rest of the head is the stock one.
    rest = {k: v for k, v in cfg.model.bbox_head.items() if k != 'num_classes'}
    assert rest == {k: v for k, v in plain.model.bbox_head.items()
                    if k != 'num_classes'}
    assert cfg.model._scope_ == 'mmdet'
    assert cfg.test_evaluator.type == 'CocoMetric'


def test_local_config_file(tmp_path):
    path = tmp_path / 'my_teacher.py'
    path.write_text(f"_base_ = '{STOCK}'\n"
                    'model = dict(bbox_head=dict(num_classes=5))\n')
    cfg = teacher_config(dict(cfg_path=str(path), neck=dict(num_outs=5)))
    assert cfg.model.bbox_head.num_classes == 5
    assert cfg.model._scope_ == 'mmdet'  # the config's default_scope
    assert cfg.model.data_preprocessor.type == 'DetDataPreprocessor'


def test_local_config_that_is_missing(tmp_path):
    missing = str(tmp_path / 'none.py')
    with pytest.raises(FileNotFoundError,
                       match=r'teacher config not found: .*none\.py'):
        teacher_config(dict(cfg_path=missing))


def test_pretrained_needs_a_stock_config(tmp_path):
    path = tmp_path / 'my_teacher.py'
    path.write_text(f"_base_ = '{STOCK}'\n")
    with pytest.raises(ValueError, match='set teacher_ckpt'):
        teacher_config(dict(cfg_path=str(path), pretrained=True))


def test_algorithm_builds_the_overridden_teacher():
    student = teacher_config(dict(
        cfg_path=STOCK, bbox_head=dict(num_classes=3),
        backbone=dict(init_cfg=None))).model
    algorithm = FrozenTeacherDistill(
        architecture=student,
        teacher=dict(cfg_path=STOCK, pretrained=False,
                     bbox_head=dict(num_classes=3),
                     backbone=dict(depth=18, init_cfg=None),
                     neck=dict(in_channels=[64, 128, 256, 512])),
        distiller=dict(type='mmrazor.ConfigurableDistiller'))
    assert algorithm.teacher.bbox_head.num_classes == 3
    assert algorithm.teacher.backbone.depth == 18
