"""mmdeploy 1.3.1's ONNX export on current torch, applied only around it.

mmdeploy calls ``torch.onnx.export`` without ``dynamo=``, and torch >= 2.9
defaults to the torch.export-based exporter, which mmdeploy's rewriters
(symbolic functions, the ``_model_to_graph`` passes) do not reach; it fails
at once (``No module named 'onnxscript'``, then on the inputs' structure).
Inside :func:`mmdeploy_export`, ``torch.onnx.export`` defaults to
``dynamo=False``: the TorchScript-based exporter that mmdeploy was written
for. mmdeploy's RoIAlign symbolic (two-stage detectors) imports
``symbolic_opset9._cast_Long``, which torch has dropped; it is provided for
the export's duration. Outside the block nothing is changed.
"""
import contextlib
import functools
import importlib
import inspect
from typing import Iterator

import torch

# The newest torch on which mmdist exported through mmdeploy (its tests).
NEWEST_TESTED_TORCH = '2.14.1'


def torchscript_exporter_available() -> bool:
    """Whether this torch still has the TorchScript-based ONNX exporter
    (``torch.onnx.utils._model_to_graph``, which mmdeploy rewrites)."""
    try:
        utils = importlib.import_module('torch.onnx.utils')
    except ImportError:
        return False
    return hasattr(utils, '_model_to_graph')


def check_torchscript_exporter() -> None:
    """Raise a RuntimeError that names the torch to install where this torch
    has no TorchScript-based ONNX exporter."""
    if not torchscript_exporter_available():
        raise RuntimeError(
            f'torch {torch.__version__} has no TorchScript-based ONNX '
            'exporter (torch.onnx.utils._model_to_graph), which mmdeploy '
            '1.3.1 exports through; torch '
            f'{NEWEST_TESTED_TORCH} has it and is the newest that mmdist '
            'exported with: pip install torch==2.14.1 torchvision==0.29.1')


def _defaults_to_dynamo() -> bool:
    parameter = inspect.signature(torch.onnx.export).parameters.get('dynamo')
    return parameter is not None and parameter.default is True


def _cast_long(g, value, non_blocking):
    """torch's former ``symbolic_opset9._cast_Long``: a Cast to int64."""
    return g.op('Cast', value, to_i=torch.onnx.TensorProtoDataType.INT64)


@contextlib.contextmanager
def mmdeploy_export() -> Iterator[None]:
    """Run mmdeploy's ONNX export inside this block (in this process: not
    with mmdeploy's multiprocess pipeline, which a patch here would not
    reach).

    Raises:
        RuntimeError: This torch has no TorchScript-based exporter.
    """
    check_torchscript_exporter()
    original = torch.onnx.export
    opset9 = importlib.import_module('torch.onnx.symbolic_opset9')
    added_cast = not hasattr(opset9, '_cast_Long')
    if _defaults_to_dynamo():
        torch.onnx.export = functools.partial(original, dynamo=False)
    if added_cast:
        opset9._cast_Long = _cast_long
    try:
        yield
    finally:
        torch.onnx.export = original
        if added_cast:
            del opset9._cast_Long
