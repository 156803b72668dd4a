import pytest

import mmdist  # noqa: F401
from mmdist.models.losses import DISTLoss


def _registries():
    from mmdet.registry import MODELS as MMDET_MODELS
    from mmengine.registry import MODELS as MMENGINE_MODELS
    from mmrazor.registry import MODELS as MMRAZOR_MODELS
    from mmseg.registry import MODELS as MMSEG_MODELS

    from mmdist.registry import MODELS
    return dict(mmdist=MODELS, mmrazor=MMRAZOR_MODELS, mmdet=MMDET_MODELS,
                mmseg=MMSEG_MODELS, mmengine=MMENGINE_MODELS)


@pytest.mark.parametrize('scope', ['mmdist', 'mmrazor', 'mmdet', 'mmseg',
                                   'mmengine'])
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


def test_config_with_custom_imports_builds_ours(tmp_path):
    from mmengine.config import Config
    from mmengine.registry import MODELS, init_default_scope
    cfg_file = tmp_path / 'cfg.py'
    cfg_file.write_text(
        "custom_imports = dict(imports=['mmdist'],\n"
        "                      allow_failed_imports=False)\n"
        "default_scope = 'mmdet'\n"
        "loss = dict(type='mmdist.DISTLoss', tau=2.0)\n")
    cfg = Config.fromfile(str(cfg_file))
    init_default_scope(cfg.default_scope)
    loss = MODELS.build(cfg.loss)
    assert type(loss) is DISTLoss and loss.tau == 2.0
