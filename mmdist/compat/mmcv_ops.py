"""mmcv's compiled ops on the devices that mmcv was built without."""
import importlib
import logging
import os
import types
from typing import Callable, FrozenSet, List, Optional

from mmengine.logging import print_log

from mmdist.ops.ext import OPS, first_tensor


class MMCVOpRouter:
    """Stands in for one function of mmcv's ``_ext`` module.

    Calls whose first tensor is on one of ``devices`` (device types, e.g.
    ``'cuda'``) go to ``fallback``, all others to mmcv's own kernel.

    Args:
        name: The ``_ext`` function name, e.g. ``'nms'``.
        kernel: mmcv's compiled function.
        fallback: The torch/torchvision implementation.
        devices: Device types routed to ``fallback``; None routes all.
    """

    def __init__(self, name: str, kernel: Callable, fallback: Callable,
                 devices: Optional[FrozenSet[str]]) -> None:
        self.name, self.kernel, self.fallback = name, kernel, fallback
        self.devices = devices
        self._announced: set = set()

    def __call__(self, *args, **kwargs):
        device = first_tensor(args, kwargs).device.type
        if self.devices is not None and device not in self.devices:
            return self.kernel(*args, **kwargs)
        if device not in self._announced:
            self._announced.add(device)
            why = ('routed everywhere' if self.devices is None else
                   f'mmcv was built without {device} kernels')
            print_log(
                f'mmdist: mmcv op {self.name} runs through torch/torchvision '
                f'on {device} ({why}; see mmdist/compat/mmcv_ops.py)',
                logger='current', level=logging.WARNING)
        return self.fallback(*args, **kwargs)


def devices_to_route(ext: types.ModuleType,
                     force: Optional[bool] = None
                     ) -> Optional[FrozenSet[str]]:
    """Device types whose mmcv ops go to torch/torchvision; None is all.

    Args:
        ext: mmcv's compiled ``_ext`` module.
        force: True routes every device, False only those that mmcv has no
            kernels for; None reads ``MMDIST_TORCH_OPS`` (1: every device).
    """
    if force is None:
        force = os.environ.get('MMDIST_TORCH_OPS', '0') == '1'
    if force:
        return None
    if ext.get_compiling_cuda_version() == 'not available':
        return frozenset({'cuda'})
    return frozenset()


def route_mmcv_ops(force: Optional[bool] = None,
                   ext: Optional[types.ModuleType] = None) -> List[str]:
    """Put :class:`MMCVOpRouter` in front of mmcv's ops where needed.

    Calling it again re-decides (tests force the routing, then undo it).

    Args:
        force: See :func:`devices_to_route`.
        ext: The compiled ``_ext`` module; None imports ``mmcv._ext``.

    Returns:
        The ``_ext`` functions routed (empty where nothing is, and for
        mmdist's stand-in ``_ext``, which is torch/torchvision throughout).
    """
    if ext is None:
        try:
            ext = importlib.import_module('mmcv._ext')
        except ImportError:
            return []  # mmcv without ops: mmdet and mmrazor fail on their own
    if getattr(ext, 'MMDIST_STANDIN', False):
        return []
    devices = devices_to_route(ext, force)
    routed = []
    for name, fallback in OPS.items():
        current = getattr(ext, name, None)
        if current is None:
            continue
        kernel = current.kernel if isinstance(current,
                                              MMCVOpRouter) else current
        if devices is not None and not devices:
            setattr(ext, name, kernel)
            continue
        setattr(ext, name, MMCVOpRouter(name, kernel, fallback, devices))
        routed.append(name)
    return routed
