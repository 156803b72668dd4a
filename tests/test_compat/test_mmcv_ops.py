"""mmdist.compat.mmcv_ops: mmcv's ops routed on the devices mmcv was
built without."""
import types

import pytest
import torch

import mmdist  # noqa: F401  applies the fixes
from mmdist import compat
from mmdist.compat import mmcv_ops


def compiled_cpu_only_ext(calls):
    """A module shaped like the ``_ext`` of an mmcv compiled with CPU
    kernels only (the routing is for those; CI has mmcv-lite): its ``nms``
    records the device of each call and runs the stand-in."""
    ext = types.ModuleType('compiled_ext')
    ext.get_compiling_cuda_version = lambda: 'not available'

    def nms(bboxes, scores, iou_threshold, offset):
        calls.append(bboxes.device.type)
        return mmcv_ops.OPS['nms'](bboxes, scores, iou_threshold, offset)
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

    monkeypatch.setattr(mmcv_ops, 'print_log',
                        lambda msg, **kwargs: messages.append(msg))
    compat.route_mmcv_ops(force=True, ext=ext)
    assert ext.nms.devices is None
    monkeypatch.setattr(ext.nms, 'fallback',
                        lambda *a, **k: fallback_calls.append(1) or
                        mmcv_ops.OPS['nms'](*a, **k))
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
