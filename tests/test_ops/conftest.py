"""The op tests call mmdist's ops through mmcv's own Python wrappers."""
import importlib
import types

import pytest

from mmdist.ops.ext import OPS

# mmcv's modules whose wrappers call the ops that mmdist implements.
_WRAPPERS = ('deform_conv', 'modulated_deform_conv', 'focal_loss',
             'roi_pool', 'roi_align', 'nms', 'multi_scale_deform_attn',
             'psa_mask', 'deform_roi_pool', 'carafe', 'masked_conv', 'bbox')


@pytest.fixture
def mmdist_ops_in_mmcv(monkeypatch):
    """With mmcv-lite, mmcv's wrappers reach mmdist's ops through the
    stand-in ``_ext`` already; with a compiled mmcv, mmdist's ops are put in
    their place for the test, so that both environments test mmdist."""
    import mmcv._ext
    if getattr(mmcv._ext, 'MMDIST_STANDIN', False):
        return
    ext = types.SimpleNamespace(**OPS)
    for name in _WRAPPERS:
        module = importlib.import_module(f'mmcv.ops.{name}')
        monkeypatch.setattr(module, 'ext_module', ext)
