"""Run mmcv's own op tests against mmdist's ops (the stand-in ``mmcv._ext``).

mmcv's tests are not part of mmdist: give a checkout of open-mmlab/mmcv at
the tag of the installed mmcv (v2.1.0), for example

    git clone --branch v2.1.0 --depth 1 https://github.com/open-mmlab/mmcv \
        /tmp/mmcv
    python scripts/mmcv_op_tests.py /tmp/mmcv
    python scripts/mmcv_op_tests.py /tmp/mmcv --cuda-as-cpu

It runs, from that checkout (the tests read ``tests/data`` by relative
paths), the test file of every op family that mmdist provides, unchanged,
and prints pytest's summary. The ops come from the stand-in where mmcv has
no compiled ops; with a compiled mmcv, use ``MMDIST_TORCH_OPS=1`` to route
them to mmdist.

``--cuda-as-cpu`` runs the tests written for CUDA on CPU tensors, the test
bodies unchanged: ``torch.cuda.is_available()`` answers True (one
device), tensors report ``is_cuda``, every tensor asked for on ``cuda``
(``device=``, ``.to()``, ``.cuda()``) is made on the CPU, and
``torch.cuda.amp.autocast`` is the CPU's autocast to float16. Several of
mmcv's tests compare against values recorded on CUDA (CARAFE, masked
convolution, deformable RoI pooling) and have no CPU variant: this is how
mmdist's CPU code is checked against them. Tests for other accelerators
(MLU, NPU, MPS) are deselected in that mode. Extra arguments go to
pytest.
"""
import argparse
import os
import sys

import pytest

#: mmcv's test files for the op families that mmdist provides.
TEST_FILES = (
    'test_bbox.py', 'test_carafe.py', 'test_deform_conv.py',
    'test_deform_roi_pool.py', 'test_focal_loss.py', 'test_masked_conv2d.py',
    'test_modulated_deform_conv.py', 'test_ms_deformable_attn.py',
    'test_nms.py', 'test_psa_mask.py', 'test_roi_align.py',
    'test_roi_pool.py')

_OTHER_ACCELERATORS = ('mlu', 'npu', 'mps')


class CudaAsCpu:
    """A pytest plugin that runs tests written for CUDA on the CPU."""

    def __init__(self) -> None:
        import torch
        from torch.overrides import TorchFunctionMode

        def on_cpu(value):
            if isinstance(value, torch.device) and value.type == 'cuda':
                return torch.device('cpu')
            if isinstance(value, str) and value.startswith('cuda'):
                return 'cpu'
            return value

        class Mode(TorchFunctionMode):

            def __torch_function__(self, func, types, args=(), kwargs=None):
                if func is torch.Tensor.cuda:
                    return args[0]
                args = tuple(on_cpu(a) for a in args)
                kwargs = {k: on_cpu(v) for k, v in (kwargs or {}).items()}
                return func(*args, **kwargs)

        def autocast(enabled=True, dtype=torch.float16, cache_enabled=True):
            return torch.autocast('cpu', dtype=dtype, enabled=enabled,
                                  cache_enabled=cache_enabled)

        # Before mmcv and the tests are imported: mmcv reads this into
        # IS_CUDA_AVAILABLE, the tests import autocast by name.
        torch.cuda.is_available = lambda: True
        torch.cuda.device_count = lambda: 1
        torch.cuda.synchronize = lambda *args, **kwargs: None
        torch.cuda.amp.autocast = autocast
        torch.Tensor.is_cuda = property(lambda self: True)
        self.mode = Mode()

    def pytest_collection_modifyitems(self, config, items):
        kept, dropped = [], []
        for item in items:
            params = getattr(getattr(item, 'callspec', None), 'params', {})
            other = any(str(value) in _OTHER_ACCELERATORS
                        for value in params.values())
            (dropped if other else kept).append(item)
        if dropped:
            config.hook.pytest_deselected(items=dropped)
            items[:] = kept

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_call(self, item):
        with self.mode:
            yield


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('mmcv', help='a checkout of open-mmlab/mmcv at the '
                        'installed version (v2.1.0)')
    parser.add_argument('--cuda-as-cpu', action='store_true',
                        help='run the CUDA tests on CPU tensors')
    args, pytest_args = parser.parse_known_args()
    tests = os.path.join(args.mmcv, 'tests', 'test_ops')
    missing = [f for f in TEST_FILES
               if not os.path.isfile(os.path.join(tests, f))]
    if missing:
        parser.error(f'{tests} lacks {", ".join(missing)}: give a checkout '
                     'of open-mmlab/mmcv at the installed version')
    plugins = [CudaAsCpu()] if args.cuda_as_cpu else []
    os.chdir(args.mmcv)
    return pytest.main([os.path.join('tests', 'test_ops', f)
                        for f in TEST_FILES] + ['-q', '-p', 'no:cacheprovider',
                                                *pytest_args],
                       plugins=plugins)


if __name__ == '__main__':
    sys.exit(main())
