"""Every config of configs/ builds (random weights) and trains a step or
two on demo inputs with the losses it declares."""
import glob
import math
import os.path as osp

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope

from mmdist.registry import MODELS
from tests.utils import REPO, distill_loss_names, random_teachers


@pytest.mark.parametrize(
    'config', sorted(glob.glob(osp.join(REPO, 'configs', '*_coco*.py'))))
def test_detection_configs_train_a_step(config):
    from mmdet.testing import demo_mm_inputs
    cfg = Config.fromfile(config)
    random_teachers(cfg.model)
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
    assert {k[len('distill.'):] for k in distill} == distill_loss_names(
        cfg.model)
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


# Configs beyond the paper: (config name, number of logit levels, entry,
# its teachers if several).
BEYOND = [
    ('dist_fcos_r50_coco', 5, 'cls', []), ('dist_atss_r50_coco', 5, 'cls',
                                           []),
    ('dist_gfl_r50_coco', 5, 'cls', []), ('dist_rtmdet_s_coco', 3, 'cls', []),
    ('dist_segformer_mit-b0_cityscapes', 1, 'cls', []),
    ('dist_deeplabv3_r18_segformer-mit-b5_cityscapes', 1, 'decode', []),
    ('dist_deeplabv3_r18_two-teachers_cityscapes', 1, 'decode',
     ['deeplabv3_r101', 'segformer_b5']),
    ('dist_retinanet_r50_two-teachers_coco', 5, 'cls', ['x101', 'r101']),
]


@pytest.mark.parametrize('name, levels, entry, teachers', BEYOND)
def test_configs_beyond_the_paper_train_two_iterations(name, levels, entry,
                                                       teachers):
    from mmengine.optim import build_optim_wrapper

    from mmdist.testing import SETTINGS, make_batch
    cfg = Config.fromfile(osp.join(REPO, 'configs', f'{name}.py'))
    random_teachers(cfg.model)
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
    # Each teacher's own term, or the one teacher's.
    keys = [f'{entry}_{t}' for t in teachers] or [entry]
    for _ in range(2):
        log = model.train_step(make_batch(setting, 2, size), optim_wrapper)
        assert {k for k in log if k.startswith('distill.loss')} == {
            f'distill.{n}' for n in distill_loss_names(cfg.model)}
        assert all(math.isfinite(float(v)) for k, v in log.items()
                   if k.startswith('distill.'))
        for key in keys:
            total = float(log[f'distill.loss_{key}'])
            if levels > 1:
                values = [float(log[f'distill.{key}_l{i}'])
                          for i in range(levels)]
                assert f'distill.{key}_l{levels}' not in log
                assert sum(values) == pytest.approx(total, rel=1e-4)
    for key, value in model.teacher.state_dict().items():
        assert torch.equal(value, before[key]), key


@pytest.fixture(scope='module')
def imagenet_images(module_tmp):
    from mmdist.datasets import make_imagenet
    root = str(module_tmp('imagenet'))
    return make_imagenet(root, num_train=2, num_val=0, image_size=(64, 64),
                         num_classes=2)['train']


# (config, extra batch augments): every ImageNet config, and the strong
# recipe with mmpretrain's Mixup/CutMix, the option its header documents.
# The Swin-L teachers (197M parameters, ~20 s each) are make test-slow's.
MIX = [dict(type='Mixup', alpha=0.2), dict(type='CutMix', alpha=1.0)]
IN1K_PATHS = sorted(glob.glob(osp.join(REPO, 'configs', '*_in1k.py')))
IN1K_NAMES = [osp.basename(path)[:-3] for path in IN1K_PATHS]
IN1K = [pytest.param(name, None, marks=[pytest.mark.slow] * (
    'swin_large' in open(path).read()))
    for name, path in zip(IN1K_NAMES, IN1K_PATHS)]
IN1K.append(('dist_resnet18_resnet50-sb_in1k', MIX))


@pytest.mark.parametrize('name, augments', IN1K)
def test_classification_configs_train_two_iterations(name, augments,
                                                     imagenet_images):
    """Each config's own train pipeline and optimiser, two steps: the
    teacher reads exactly the student's (mixed, where it mixes) batch and
    is left unchanged."""
    from mmengine.dataset import pseudo_collate
    from mmengine.optim import build_optim_wrapper
    from mmpretrain.registry import TRANSFORMS
    cfg = Config.fromfile(osp.join(REPO, 'configs', f'{name}.py'))
    random_teachers(cfg.model)
    if augments:
        cfg.model.architecture.train_cfg = dict(augments=augments)
    init_default_scope('mmpretrain')
    # mmpretrain's batch augments draw from NumPy (which mix, its ratio):
    # seeded, so that whatever ran before cannot draw a mix that changes
    # nothing.
    torch.manual_seed(0)
    np.random.seed(0)
    # As the Runner builds it: the top-level preprocessor goes to the model.
    model = MODELS.build(dict(cfg.model,
                              data_preprocessor=cfg.data_preprocessor))
    model.train()
    mixes = bool(model.data_preprocessor.batch_augments)
    assert mixes == bool(augments or 'swin-tiny' in name)
    pipeline = [TRANSFORMS.build(t)
                for t in cfg.train_dataloader.dataset.pipeline]

    def load(path, label):
        results = dict(img_path=path, gt_label=label)
        for transform in pipeline:
            results = transform(results)
        return results

    # Four different images, so that a mix changes the batch.
    batch = pseudo_collate([load(path, index // 2) for index, path in
                            enumerate(imagenet_images)])
    optim_wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    seen = {}
    sides = [('student', model.architecture.backbone)] + [
        (str(info.name), teacher.backbone)
        for info, teacher in model.teacher_models()]
    hooks = [
        module.register_forward_pre_hook(
            lambda mod, args, side=side: seen.__setitem__(side, args[0]))
        for side, module in sides
    ]
    before = {k: v.clone() for k, v in model.teacher.state_dict().items()}
    student = model.architecture.head.fc.weight.detach().clone()
    for _ in range(2):
        log = model.train_step(batch, optim_wrapper)
        for loss in distill_loss_names(cfg.model):
            assert math.isfinite(float(log[f'distill.{loss}']))
        assert math.isfinite(float(log['student.loss']))
        # Every teacher reads exactly the student's batch.
        assert len(seen) == len(sides)
        assert all(torch.equal(seen['student'], seen[side])
                   for side, _ in sides)
    for hook in hooks:
        hook.remove()
    assert seen['student'].shape[-2:] == (224, 224)
    plain = model.data_preprocessor(batch, False)['inputs']
    # With batch augments the images were mixed before either model saw them.
    assert torch.equal(seen['student'], plain) != mixes
    for key, value in model.teacher.state_dict().items():
        assert torch.equal(value, before[key]), key
    assert not torch.equal(model.architecture.head.fc.weight, student)


# The stock mmpretrain config that each ImageNet config's student is.
STUDENTS = {
    'resnet18': 'resnet/resnet18_8xb32_in1k.py',
    'resnet34': 'resnet/resnet34_8xb32_in1k.py',
    'resnet50': 'resnet/resnet50_8xb32_in1k.py',
    'mobilenet-v2': 'mobilenet_v2/mobilenet-v2_8xb32_in1k.py',
    'efficientnet-b0': 'efficientnet/efficientnet-b0_8xb32_in1k.py',
    'swin-tiny': 'swin_transformer/swin-tiny_16xb64_in1k.py',
}


def _without_scope(value):
    if isinstance(value, dict):
        return {k: _without_scope(v) for k, v in value.items()
                if k != '_scope_'}
    if isinstance(value, (list, tuple)):
        return [_without_scope(v) for v in value]
    return value


@pytest.mark.parametrize('name', IN1K_NAMES)
def test_classification_students_are_the_stock_ones(name):
    """The student, its test pipeline and its preprocessor are those of the
    stock config its name gives (dist_<student>_..._in1k); only the head's
    loss may change (the strong recipe's label smoothing, KD's 0.9)."""
    from mmengine.hub import get_config
    cfg = Config.fromfile(osp.join(REPO, 'configs', f'{name}.py'))
    stock = get_config('mmpretrain::' + STUDENTS[name.split('_')[1]])
    ours = _without_scope(cfg.model.architecture.to_dict())
    theirs = _without_scope(stock.model.to_dict())
    ours['head'].pop('loss')
    theirs['head'].pop('loss')
    assert ours == theirs
    for key in ('test_dataloader', 'data_preprocessor'):
        assert _without_scope(cfg[key].to_dict()) == _without_scope(
            stock[key].to_dict()), key
