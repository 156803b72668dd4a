"""mmdist.compat.mmrazor: MMRazor 1.0 imports on current torch, and its
in-place guard reaches every submodule."""
import pytest
import torch

import mmdist  # noqa: F401  applies the fixes
from mmdist import compat
from tests.test_compat.utils import run_python


def test_mmrazor_models_import_fails_without_and_works_with_mmdist():
    stock = run_python('import mmrazor.models')
    fixed = run_python("""
        import mmdist
        import mmrazor.models
        from mmrazor.models import (ConfigurableDistiller,
                                    SingleTeacherDistill)
        from mmrazor.models.task_modules import ModuleOutputsRecorder
        print('imported')
    """)
    assert fixed.returncode == 0, fixed.stderr
    assert 'imported' in fixed.stdout
    if stock.returncode == 0:
        pytest.skip(f'mmrazor imports unpatched on torch {torch.__version__}')
    assert 'Error' in stock.stderr


def test_renamed_fuser_helpers_are_aliased():
    from torch.ao.quantization import fuser_method_mappings as fuser
    for old, new in compat._FUSER_ALIASES.items():
        if hasattr(fuser, new):
            assert getattr(fuser, old) is getattr(fuser, new)
    # Idempotent: nothing left to add.
    assert compat.alias_renamed_fuser_helpers() == []


def test_backend_config_utils_is_imported():
    import torch.ao.quantization.backend_config as backend_config
    assert hasattr(backend_config, 'utils')
    assert compat.import_backend_config_utils() is False


def test_backend_configs_build_lazily_with_a_clear_error():
    from mmrazor.structures.quantization import BackendConfigs
    if compat.backend_configs_build_at_import():
        pytest.skip('this torch builds the backend configs at import time')
    assert isinstance(BackendConfigs, compat.LazyBackendConfigs)
    assert set(BackendConfigs) == set(compat._BACKENDS)
    with pytest.raises(RuntimeError, match='Quantization is unavailable'):
        BackendConfigs['native']
    with pytest.raises(KeyError):
        BackendConfigs['no-such-backend']


def _algorithm_with_norm_recorders():
    """MMRazor's SingleTeacherDistill over mmpretrain's ResNet-18, recording
    the stem's BatchNorm (followed by an in-place ReLU) on both sides."""
    from mmengine.registry import init_default_scope

    from mmdist.registry import MODELS
    init_default_scope('mmrazor')
    resnet = dict(
        _scope_='mmpretrain', type='ImageClassifier',
        backbone=dict(type='ResNet', depth=18),
        neck=dict(type='GlobalAveragePooling'),
        head=dict(type='LinearClsHead', num_classes=10, in_channels=512))
    recorders = dict(bn=dict(type='ModuleOutputs', source='backbone.bn1'))
    return MODELS.build(dict(
        type='SingleTeacherDistill', architecture=resnet, teacher=resnet,
        distiller=dict(type='ConfigurableDistiller',
                       student_recorders=recorders,
                       teacher_recorders=recorders)))


def test_stock_inplace_guard_misses_every_submodule():
    """What MMRazor's own walk does on this torch: nothing."""
    from mmrazor.models.algorithms.base import BaseAlgorithm
    if not compat.inplace_walk_is_a_no_op():
        pytest.skip(f'torch {torch.__version__} keeps an OrderedDict in '
                    '_modules: MMRazor walks it as it is')
    stock = BaseAlgorithm.set_module_inplace_false.stock
    model = torch.nn.Sequential(torch.nn.BatchNorm2d(3),
                                torch.nn.ReLU(inplace=True))

    class Holder:  # the walk recurses through its first argument
        set_module_inplace_false = stock

    holder = Holder()
    holder.model = model
    holder.set_module_inplace_false(model, 'self.model')
    assert model[1].inplace is True


def test_a_norm_recorder_records_what_the_norm_returned():
    torch.manual_seed(0)
    algorithm = _algorithm_with_norm_recorders()
    algorithm.eval()
    stem = algorithm.architecture.backbone
    assert all(not m.inplace for m in algorithm.modules()
               if isinstance(getattr(m, 'inplace', None), bool))
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        expected = stem.norm1(stem.conv1(x))
        assert (expected < 0).any()  # an in-place ReLU would zero these
        for side, model in (('student', algorithm.architecture),
                            ('teacher', algorithm.teacher)):
            recorders = getattr(algorithm.distiller, f'{side}_recorders')
            with recorders:
                model(x, mode='tensor')
            recorded = recorders.get_recorder('bn').data_buffer[0]
            if side == 'teacher':  # its own weights
                expected = model.backbone.norm1(model.backbone.conv1(x))
            torch.testing.assert_close(recorded, expected)
