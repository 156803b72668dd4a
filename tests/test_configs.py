"""Every COCO config of configs/ builds (random weights) and trains a step
on demo inputs with the losses it declares."""
import glob
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope

from mmdist.registry import MODELS
from tests.utils import REPO


@pytest.mark.parametrize(
    'config', sorted(glob.glob(osp.join(REPO, 'configs', '*_coco*.py'))))
def test_detection_configs_train_a_step(config):
    from mmdet.testing import demo_mm_inputs
    cfg = Config.fromfile(config)
    cfg.model.teacher_ckpt = None
    cfg.model.architecture.backbone.init_cfg = None
    init_default_scope('mmdet')
    model = MODELS.build(cfg.model)
    model.train()
    data = model.data_preprocessor(
        demo_mm_inputs(batch_size=2, image_shapes=(3, 96, 96),
                       num_items=[2, 3], num_classes=80), training=True)
    losses = model.loss(data['inputs'], data['data_samples'])
    distill = {k: v for k, v in losses.items()
               if k.startswith('distill.loss')}
    expected = set(cfg.model.distiller.distill_losses)
    assert {k[len('distill.'):] for k in distill} == expected
    assert all(torch.isfinite(v) for v in distill.values())
    sum(distill.values()).backward()
    if 'anchor_rows' in config:
        loss = model.distiller.distill_losses['loss_p3']
        assert loss.num_classes == 80 and loss.activation == 'sigmoid'
    if 'mimic' in config:
        connector = model.distiller.connectors['mimic_fpn0']
        assert connector.conv_module.conv.kernel_size == (3, 3)
        assert connector.conv_module.conv.weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in model.teacher.parameters())
