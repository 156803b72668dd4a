import subprocess
import sys
import textwrap
import types

import numpy as np
import pytest
import torch

import mmdist  # noqa: F401  applies the fixes
from mmdist import compat
from tests.utils import REPO


def run_python(code: str) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter (no mmdist imported)."""
    return subprocess.run([sys.executable, '-c', textwrap.dedent(code)],
                          capture_output=True, text=True)


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


def _save_mmengine_style_checkpoint(path):
    from mmengine.logging import MessageHub
    from mmengine.runner.checkpoint import save_checkpoint
    hub = MessageHub.get_instance('mmdist-test-compat')
    hub.update_scalar('train/loss', 1.5)
    hub.update_scalar('train/lr', np.float64(0.01))
    checkpoint = dict(
        meta=dict(epoch=1, iter=10, message_hub=hub.state_dict(),
                  seed=np.int64(3)),
        state_dict=dict(weight=torch.arange(4.0)))
    save_checkpoint(checkpoint, str(path))


def test_mmengine_training_checkpoint_loads_with_weights_only(tmp_path):
    path = tmp_path / 'epoch_1.pth'
    _save_mmengine_style_checkpoint(path)
    load = f"""
        import torch
        from mmengine.runner.checkpoint import _load_checkpoint
        ckpt = _load_checkpoint({str(path)!r}, map_location='cpu')
        assert torch.equal(ckpt['state_dict']['weight'], torch.arange(4.0))
        print(type(ckpt['meta']['message_hub']['log_scalars']['train/loss'])
              .__name__)
    """
    stock = run_python(load)
    fixed = run_python('import mmdist\n' + textwrap.dedent(load))
    assert fixed.returncode == 0, fixed.stderr
    assert 'HistoryBuffer' in fixed.stdout
    if stock.returncode == 0:
        pytest.skip('torch.load unpickles mmengine checkpoints unpatched')
    assert 'weights_only' in stock.stderr


class NotAllowed:
    pass


class GetattrPayload:
    """Pickles as getattr(np.dtype, 'mro'), which the restricted getattr
    must refuse: it resolves HistoryBuffer statistics methods only."""

    def __reduce__(self):
        return getattr, (np.dtype, 'mro')


def test_safe_loading_still_refuses_other_objects(tmp_path):
    if not hasattr(torch.serialization, 'add_safe_globals'):
        pytest.skip('torch < 2.4 has no weights_only allowlist')
    path = tmp_path / 'evil.pth'
    torch.save(dict(state_dict={}, payload=NotAllowed()), path)
    from mmengine.runner.checkpoint import _load_checkpoint
    with pytest.raises(Exception, match='weights_only'):
        _load_checkpoint(str(path), map_location='cpu')
    torch.save(dict(payload=GetattrPayload()), path)
    with pytest.raises(Exception, match='HistoryBuffer statistics methods'):
        _load_checkpoint(str(path), map_location='cpu')
    # Plain weights files keep loading with weights_only=True.
    weights = tmp_path / 'weights.pth'
    torch.save(dict(state_dict=dict(w=torch.ones(2))), weights)
    assert torch.load(weights, weights_only=True)['state_dict']['w'].sum() == 2


def test_apply_is_idempotent():
    before = compat.apply()
    assert before['fuser_aliases'] == []
    assert before['backend_config_utils'] is False
    assert before['lazy_backend_configs'] is False
    assert before['default_hooks_none'] is False
    assert before['memoized_config_formatting'] is False


def test_a_config_is_formatted_once_and_as_yapf_formats_it():
    from mmengine.config import Config
    from yapf.yapflib.yapf_api import FormatCode

    config = Config.fromfile(f'{REPO}/configs/dist_resnet18_in1k.py')
    text = config.pretty_text
    # yapf leaves it as it is (MMEngine's style), and the second time it is
    # the same object: remembered, not formatted again.
    style = dict(based_on_style='pep8',
                 blank_line_before_nested_class_or_def=True,
                 split_before_expression_after_opening_paren=True)
    assert FormatCode(text, style_config=style)[0] == text
    assert config.pretty_text is text
    config.train_cfg.max_epochs = 1  # another text, formatted anew
    changed = config.pretty_text
    assert changed != text and 'max_epochs=1' in changed


def test_any_default_hook_is_removed_by_none(tmp_path):
    from mmengine.runner import Runner
    from torch import nn

    from mmdist.engine import TeacherEvalHook

    def hook_types(**default_hooks):
        runner = Runner(model=nn.Linear(1, 1), work_dir=str(tmp_path),
                        default_hooks=default_hooks)
        return {type(h).__name__ for h in runner.hooks}

    assert 'TeacherEvalHook' in hook_types(
        teacher_eval=dict(type='mmdist.TeacherEvalHook'))
    assert TeacherEvalHook.__name__ not in hook_types(teacher_eval=None)
    # MMEngine's own hooks are removed as before.
    assert 'IterTimerHook' not in hook_types(timer=None)
    assert 'IterTimerHook' in hook_types()


def compiled_cpu_only_ext(calls):
    """A module shaped like the ``_ext`` of an mmcv compiled with CPU
    kernels only (the routing is for those; CI has mmcv-lite): its ``nms``
    records the device of each call and runs the stand-in."""
    ext = types.ModuleType('compiled_ext')
    ext.get_compiling_cuda_version = lambda: 'not available'

    def nms(bboxes, scores, iou_threshold, offset):
        calls.append(bboxes.device.type)
        return compat.OPS['nms'](bboxes, scores, iou_threshold, offset)
    ext.nms = nms
    return ext


def test_cpu_only_mmcv_routes_cuda_calls_and_announces_once(monkeypatch):
    kernel_calls, fallback_calls, messages = [], [], []
    ext = compiled_cpu_only_ext(kernel_calls)
    assert compat.route_mmcv_ops(force=False, ext=ext) == ['nms']
    assert ext.nms.devices == {'cuda'}
    boxes = torch.tensor([[0., 0., 10., 10.], [1., 1., 10., 10.]])
    assert ext.nms(boxes, torch.tensor([0.9, 0.8]), 0.5, 0).tolist() == [0]
    assert kernel_calls == ['cpu']  # CPU tensors stay on mmcv's kernel

    monkeypatch.setattr(compat, 'print_log',
                        lambda msg, **kwargs: messages.append(msg))
    compat.route_mmcv_ops(force=True, ext=ext)
    assert ext.nms.devices is None
    monkeypatch.setattr(ext.nms, 'fallback',
                        lambda *a, **k: fallback_calls.append(1) or
                        compat.OPS['nms'](*a, **k))
    for _ in range(3):
        assert ext.nms(boxes, torch.tensor([0.9, 0.8]), 0.5, 0).tolist() \
            == [0]
    assert (len(kernel_calls), len(fallback_calls)) == (1, 3)
    assert len(messages) == 1
    assert 'mmcv op nms runs through torch/torchvision on cpu' in messages[0]
    # Undone: the kernel itself is back in place.
    assert compat.route_mmcv_ops(force=False, ext=ext) == ['nms']
    ext.get_compiling_cuda_version = lambda: '12.1'
    assert compat.route_mmcv_ops(force=False, ext=ext) == []
    assert ext.nms.__name__ == 'nms'


def test_mmdist_torch_ops_env_forces_routing(monkeypatch):
    ext = compiled_cpu_only_ext([])
    ext.get_compiling_cuda_version = lambda: '12.1'
    assert compat.devices_to_route(ext) == frozenset()
    monkeypatch.setenv('MMDIST_TORCH_OPS', '1')
    assert compat.devices_to_route(ext) is None


def test_the_stand_in_ext_is_left_alone():
    import mmcv._ext as ext
    if not getattr(ext, 'MMDIST_STANDIN', False):
        pytest.skip('this environment has a compiled mmcv')
    assert compat.route_mmcv_ops(force=True) == []
    assert not isinstance(ext.nms, compat.MMCVOpRouter)
