"""Every COCO config of configs/ builds (random weights) and trains a step
on demo inputs with the losses it declares."""
import glob
import math
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
    expected = set(cfg.model.distiller.get('distill_losses', {})) | {
        f'loss_{name}' for name in cfg.model.distiller.logits}
    assert {k[len('distill.'):] for k in distill} == expected
    assert all(torch.isfinite(v) for v in distill.values())
    sum(distill.values()).backward()
    if 'anchor_rows' in config:
        loss = model.distiller.logit_losses['cls']
        assert loss.num_classes == 80 and loss.activation == 'sigmoid'
    if 'mimic' in config:
        connector = model.distiller.connectors['mimic_fpn0']
        assert connector.conv_module.conv.kernel_size == (3, 3)
        assert connector.conv_module.conv.weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in model.teacher.parameters())


# Configs beyond the paper: (config name, number of logit levels, entry).
BEYOND = [
    ('dist_fcos_r50_coco', 5, 'cls'), ('dist_atss_r50_coco', 5, 'cls'),
    ('dist_gfl_r50_coco', 5, 'cls'), ('dist_rtmdet_s_coco', 3, 'cls'),
    ('dist_segformer_mit-b0_cityscapes', 1, 'cls'),
    ('dist_deeplabv3_r18_segformer-mit-b5_cityscapes', 1, 'decode')
]


@pytest.mark.parametrize('name, levels, entry', BEYOND)
def test_configs_beyond_the_paper_train_two_iterations(name, levels, entry):
    from mmengine.optim import build_optim_wrapper

    from mmdist.testing import SETTINGS, make_batch
    cfg = Config.fromfile(osp.join(REPO, 'configs', f'{name}.py'))
    cfg.model.teacher_ckpt = None
    task = 'seg' if 'cityscapes' in name else 'det'
    size = (64, 128) if task == 'seg' else (96, 96)
    if task == 'seg':
        cfg.model.architecture.data_preprocessor.size = size
    init_default_scope('mmrazor')
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.train()
    assert type(model.distiller).__name__ == 'LogitDistiller'
    optim_wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    setting = next(s for s in SETTINGS if s.task == task)
    before = {k: v.clone() for k, v in model.teacher.state_dict().items()}
    for _ in range(2):
        log = model.train_step(make_batch(setting, 2, size), optim_wrapper)
        total = float(log[f'distill.loss_{entry}'])
        assert math.isfinite(total)
        if levels > 1:
            values = [float(log[f'distill.{entry}_l{i}'])
                      for i in range(levels)]
            assert all(math.isfinite(v) for v in values)
            assert f'distill.{entry}_l{levels}' not in log
            assert sum(values) == pytest.approx(total, rel=1e-4)
    for key, value in model.teacher.state_dict().items():
        assert torch.equal(value, before[key]), key
