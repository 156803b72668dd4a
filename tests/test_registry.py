import pytest

import mmdist  # noqa: F401
from mmdist.models.losses import DISTLoss


def _registries():
    from mmdet.registry import MODELS as MMDET_MODELS
    from mmengine.registry import MODELS as MMENGINE_MODELS
    from mmpretrain.registry import MODELS as MMPRETRAIN_MODELS
    from mmrazor.registry import MODELS as MMRAZOR_MODELS
    from mmseg.registry import MODELS as MMSEG_MODELS

    from mmdist.registry import MODELS
    return dict(mmdist=MODELS, mmrazor=MMRAZOR_MODELS, mmdet=MMDET_MODELS,
                mmseg=MMSEG_MODELS, mmpretrain=MMPRETRAIN_MODELS,
                mmengine=MMENGINE_MODELS)


@pytest.mark.parametrize('scope', ['mmdist', 'mmrazor', 'mmdet', 'mmseg',
                                   'mmpretrain', 'mmengine'])
def test_scoped_name_builds_ours_from_every_registry(scope):
    loss = _registries()[scope].build(
        dict(type='mmdist.DISTLoss', beta=2.0, activation='sigmoid'))
    assert type(loss) is DISTLoss
    assert loss.beta == 2.0 and loss.activation == 'sigmoid'


def test_mmrazor_keeps_its_own_distloss():
    from mmrazor.models.losses import DISTLoss as RazorDISTLoss
    registries = _registries()
    # A config in MMRazor's scope gets MMRazor's class for the bare name
    # (_scope_ pins it: a default scope set elsewhere would win otherwise).
    razor = registries['mmrazor'].build(
        dict(type='DISTLoss', _scope_='mmrazor'))
    assert type(razor) is RazorDISTLoss and RazorDISTLoss is not DISTLoss
    # Inside the mmdist scope the bare name is ours.
    assert type(registries['mmdist'].build(
        dict(type='DISTLoss', _scope_='mmdist'))) is DISTLoss


@pytest.mark.parametrize('scope', ['mmdet', 'mmseg', 'mmpretrain'])
def test_config_with_custom_imports_builds_ours(tmp_path, scope):
    from mmengine.config import Config
    from mmengine.registry import MODELS, init_default_scope
    cfg_file = tmp_path / 'cfg.py'
    cfg_file.write_text(
        "custom_imports = dict(imports=['mmdist'],\n"
        "                      allow_failed_imports=False)\n"
        f"default_scope = '{scope}'\n"
        "loss = dict(type='mmdist.DISTLoss', tau=2.0)\n")
    cfg = Config.fromfile(str(cfg_file))
    init_default_scope(cfg.default_scope)
    loss = MODELS.build(cfg.loss)
    assert type(loss) is DISTLoss and loss.tau == 2.0


# Stock configs of the three task packages and a class of theirs that
# shares its registered name ('ResNet') with the others.
STOCK = [
    ('mmdet::retinanet/retinanet_r50_fpn_1x_coco.py', 'mmdet.models'),
    ('mmseg::deeplabv3/deeplabv3_r18-d8_4xb2-80k_cityscapes-512x1024.py',
     'mmseg.models'),
    ('mmpretrain::resnet/resnet18_8xb32_in1k.py', 'mmpretrain.models'),
]


@pytest.mark.slow
def test_three_task_packages_keep_their_scopes_in_one_process():
    """mmdet, mmseg, mmpretrain and mmdist imported together (in a fresh
    interpreter, all four): each stock config builds its own package's
    backbone for the shared name 'ResNet', and a distillation config of
    each task builds."""
    from tests.utils import run_tool
    script = f"""
import mmdet.models, mmseg.models, mmpretrain.models, mmdist
from mmengine.hub import get_config
from mmengine.registry import DefaultScope
from mmdist.registry import MODELS
for path, package in {STOCK!r}:
    cfg = get_config(path)
    backbone = dict(cfg.model.backbone, init_cfg=None)
    scope = path.split('::')[0]
    with DefaultScope.overwrite_default_scope(scope):
        built = MODELS.build(dict(backbone, _scope_=scope))
    assert type(built).__module__.startswith(package), type(built)
    print(scope, type(built).__module__)
from mmengine.config import Config
for name in ('dist_retinanet_r50_coco', 'dist_deeplabv3_r18_cityscapes',
             'dist_resnet18_in1k'):
    cfg = Config.fromfile(f'configs/{{name}}.py')
    cfg.model.teacher_ckpt = None
    cfg.model.architecture.pop('init_cfg', None)
    model = MODELS.build(cfg.model)
    print(name, type(model).__name__, type(model.architecture).__name__)
"""
    proc = run_tool(['-c', script])
    lines = proc.stdout.splitlines()
    assert [line.split()[0] for line in lines] == [
        'mmdet', 'mmseg', 'mmpretrain', 'dist_retinanet_r50_coco',
        'dist_deeplabv3_r18_cityscapes', 'dist_resnet18_in1k']
    assert lines[-3:] == [
        'dist_retinanet_r50_coco FrozenTeacherDistill RetinaNet',
        'dist_deeplabv3_r18_cityscapes SegTeacherDistill EncoderDecoder',
        'dist_resnet18_in1k FrozenTeacherDistill ImageClassifier']
