"""Folding a frozen teacher's BatchNorm (mmdist/models/algorithms/fold_bn.py):
the paper's teachers (and a SyncBN one) give the unfolded teacher's logits
to float rounding; a BatchNorm that does not follow a convolution alone is
left; a checkpoint of the unfolded teacher still loads; the fold is the
formula written out."""
import copy

import pytest
import torch
from torch import nn

import mmdist  # noqa: F401
from mmdist.models.algorithms.fold_bn import (conv_bn_pairs, fold_batch_norm,
                                              fold_conv_bn)
from mmdist.testing import SETTINGS, build_setting, make_batch, setting_config


def randomise_bn(model: nn.Module, seed: int = 0) -> None:
    """BatchNorm statistics and affine far from identity, as trained ones
    are: an identity BatchNorm would fold into nothing."""
    g = torch.Generator().manual_seed(seed)
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            n = module.num_features
            module.running_mean.copy_(torch.randn(n, generator=g) * 0.5)
            module.running_var.copy_(torch.rand(n, generator=g) + 0.5)
            module.weight.data.copy_(torch.rand(n, generator=g) + 0.5)
            module.bias.data.copy_(torch.randn(n, generator=g) * 0.2)


def bn_count(model: nn.Module) -> int:
    return sum(isinstance(m, nn.modules.batchnorm._BatchNorm)
               for m in model.modules())


@pytest.fixture(scope='module')
def teacher_ckpts(tmp_path_factory):
    """Each setting's teacher with random weights and BatchNorm, saved."""
    saved = {}
    for setting in SETTINGS:
        torch.manual_seed(0)
        teacher = build_setting(setting, 'mmdist', image_size=(64, 128)
                                ).teacher
        randomise_bn(teacher)
        path = tmp_path_factory.mktemp('fold') / f'{setting.name}.pth'
        torch.save(dict(state_dict=teacher.state_dict()), path)
        saved[setting.name] = str(path)
    return saved


def build(setting, ckpt, fold):
    from mmengine.registry import init_default_scope
    from mmdist.registry import MODELS
    cfg = setting_config(setting)
    model_cfg = copy.deepcopy(cfg.model)
    model_cfg.teacher_ckpt = ckpt
    model_cfg.teacher_fold_bn = fold
    if setting.task == 'seg':
        for pre in (model_cfg.data_preprocessor,
                    model_cfg.architecture.data_preprocessor):
            pre.size = (64, 128)
    init_default_scope('mmrazor')
    torch.manual_seed(0)  # the same student: it picks the two-stage RoIs
    return MODELS.build(model_cfg)


def teacher_logits(model, data):
    """What the distillation reads of the teacher: its recorders' data."""
    model.train()
    batch = model.data_preprocessor(copy.deepcopy(data), True)
    torch.manual_seed(0)  # the same RoIs for the two-stage setting
    with torch.no_grad():
        model.loss(batch['inputs'], batch['data_samples'])
    return {name: [t.clone() for t in recorder.data_buffer]
            for name, recorder in
            model.distiller.teacher_recorders.recorders.items()}


@pytest.mark.parametrize('setting', SETTINGS, ids=lambda s: s.name)
def test_folded_teacher_gives_the_same_logits(setting, teacher_ckpts):
    # RetinaNet X101, Cascade Mask R-CNN X101, DeepLabV3 R101 with mmseg's
    # SyncBN (in eval mode a BatchNorm like any other).
    folded = build(setting, teacher_ckpts[setting.name], True)
    plain = build(setting, teacher_ckpts[setting.name], False)
    assert len(folded.teacher_folded) > 0 and plain.teacher_folded == []
    assert bn_count(folded.teacher) == bn_count(plain.teacher) - len(
        folded.teacher_folded)
    if setting.name == 'deeplabv3':
        assert isinstance(plain.teacher.backbone.stem[1], nn.SyncBatchNorm)
        assert isinstance(folded.teacher.backbone.stem[1], nn.Identity)
    size = (128, 128) if setting.task == 'det' else (64, 128)
    data = make_batch(setting, 2, size)
    ours, theirs = teacher_logits(folded, data), teacher_logits(plain, data)
    assert ours.keys() == theirs.keys()
    for name in ours:
        assert len(ours[name]) == len(theirs[name]) > 0
        for a, b in zip(ours[name], theirs[name]):
            scale = float(b.abs().max())
            torch.testing.assert_close(a, b, rtol=0, atol=2e-5 * scale)


def test_the_imagenet_teacher_is_folded(tmp_path):
    # ResNet-34 -> ResNet-18 (mmpretrain): every BatchNorm follows a conv.
    from mmengine.config import Config
    from mmengine.registry import init_default_scope

    from mmdist.registry import MODELS
    from mmdist.testing import REPO
    cfg = Config.fromfile(f'{REPO}/configs/dist_resnet18_in1k.py')
    model_cfg = cfg.model
    model_cfg.setdefault('data_preprocessor', cfg.data_preprocessor)
    init_default_scope('mmrazor')
    model_cfg.teacher_ckpt = None
    teacher = MODELS.build(model_cfg).teacher
    randomise_bn(teacher)
    ckpt = str(tmp_path / 'r34.pth')
    torch.save(dict(state_dict=teacher.state_dict()), ckpt)
    models = {}
    for fold in (True, False):
        model_cfg.teacher_ckpt, model_cfg.teacher_fold_bn = ckpt, fold
        models[fold] = MODELS.build(model_cfg)
    assert bn_count(models[True].teacher) == 0
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        a, b = (models[f].teacher(x, mode='tensor') for f in (True, False))
    torch.testing.assert_close(a, b, rtol=0, atol=2e-5 * float(b.abs().max()))


def test_a_batchnorm_not_after_a_conv_alone_is_left():
    # mmpretrain's DenseNet: norm1 normalises a concatenation or a pooling
    # (left), norm2 a conv's output (folded).
    from mmpretrain.models import DenseNet
    torch.manual_seed(0)
    net = DenseNet(arch='121')
    net.eval()
    net.requires_grad_(False)
    randomise_bn(net)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        before = net(x)[-1]
    folded = fold_batch_norm(
        net, lambda: net(torch.randn(1, 3, 64, 64, requires_grad=True)))
    names = {pair.bn for pair in folded}
    assert any(n.endswith('norm2') for n in names)
    assert not any(n.endswith('norm1') for n in names)
    layer = net.stages[0].block[1]
    assert isinstance(layer.norm1, nn.BatchNorm2d)  # after a concatenation
    assert isinstance(layer.norm2, nn.Identity)
    with torch.no_grad():
        after = net(x)[-1]
    torch.testing.assert_close(after, before, rtol=0,
                               atol=2e-5 * float(before.abs().max()))


class Branching(nn.Module):
    """conv_a feeds a BatchNorm and a sum; conv_b feeds a BatchNorm alone;
    conv_c is shared by two calls that each go to bn_c; bn_d follows a
    pooling. Attributes are declared in a misleading order."""

    def __init__(self):
        super().__init__()
        self.bn_b = nn.BatchNorm2d(4)
        self.conv_a, self.bn_a = nn.Conv2d(3, 4, 3, padding=1), \
            nn.BatchNorm2d(4)
        self.conv_b = nn.Conv2d(4, 4, 1, bias=False)
        self.conv_c, self.bn_c = nn.Conv2d(4, 4, 1), nn.BatchNorm2d(4)
        self.bn_d = nn.BatchNorm2d(4)

    def forward(self, x):
        a = self.conv_a(x)
        y = self.bn_a(a) + a  # conv_a's output is read twice
        y = self.bn_b(self.conv_b(y))
        y = self.bn_c(self.conv_c(y)) + self.bn_c(self.conv_c(y * 2))
        return self.bn_d(nn.functional.avg_pool2d(y, 2))


def test_only_a_conv_feeding_a_batchnorm_alone_is_folded():
    torch.manual_seed(0)
    model = Branching().eval()
    randomise_bn(model)
    pairs = conv_bn_pairs(
        model, lambda: model(torch.randn(1, 3, 8, 8, requires_grad=True)))
    assert pairs == [('conv_b', 'bn_b'), ('conv_c', 'bn_c')]
    x = torch.randn(2, 3, 8, 8)
    with torch.no_grad():
        before = model(x)
        fold_conv_bn(model, pairs)
        after = model(x)
    torch.testing.assert_close(after, before)


def test_the_fold_is_the_formula():
    torch.manual_seed(0)
    conv = nn.Conv2d(3, 5, 3, bias=True).double()
    bn = nn.BatchNorm2d(5, eps=1e-3).double().eval()
    randomise_bn(bn)
    model = nn.Sequential(conv, bn)
    w, b = conv.weight.detach().clone(), conv.bias.detach().clone()
    fold_conv_bn(model, [('0', '1')])
    s = bn.weight / torch.sqrt(bn.running_var + 1e-3)
    torch.testing.assert_close(model[0].weight, w * s[:, None, None, None])
    torch.testing.assert_close(model[0].bias,
                               (b - bn.running_mean) * s + bn.bias)
    assert isinstance(model[1], nn.Identity)


def test_an_unfolded_checkpoint_loads_into_the_folded_teacher(teacher_ckpts):
    # A distillation checkpoint that holds the teacher (older mmdist,
    # MMRazor) was saved unfolded; loading it folds its teacher weights.
    setting = SETTINGS[0]
    plain = build(setting, teacher_ckpts['retinanet'], False)
    changed = {k: v * 1.1 if torch.is_tensor(v) and v.is_floating_point()
               else v for k, v in plain.state_dict().items()}
    # state_dict leaves out a teacher from teacher_ckpt: put it back.
    changed.update({f'teacher.{k}': v * 1.1 if v.is_floating_point() else v
                    for k, v in plain.teacher.state_dict().items()})
    plain.load_state_dict(changed, strict=True)
    folded = build(setting, teacher_ckpts['retinanet'], True)
    folded.load_state_dict(changed, strict=True)
    data = make_batch(setting, 2, (128, 128))
    ours, theirs = teacher_logits(folded, data), teacher_logits(plain, data)
    for a, b in zip(ours['logits_cls'], theirs['logits_cls']):
        torch.testing.assert_close(a, b, rtol=0,
                                   atol=2e-5 * float(b.abs().max()))
