"""Make MMRazor 1.0 and MMEngine 0.10 work on current PyTorch.

Everything that mmdist changes in its dependencies lives here, applied once
by :func:`apply` when ``mmdist`` is imported. Each fix first checks that its
problem is present, so on a torch where it is not, nothing changes.

1. ``import mmrazor.models`` fails on torch >= 2.1 (mmrazor issues 615,
   632): its quantization structures import fuser helpers that torch renamed
   (``reverse2`` -> ``_reverse2``, ``reverse_sequential_wrapper2`` ->
   ``_sequential_wrapper2``), use ``torch.ao.quantization.backend_config``'s
   ``utils`` submodule without importing it, and build every quantization
   backend config at import time with ``BackendPatternConfig`` methods that
   torch has since dropped. We alias the helpers, import the submodule and
   let the backend configs build on first use, so distillers, recorders,
   losses and algorithms import; quantization raises a clear error instead.
2. torch >= 2.6 loads with ``weights_only=True`` by default and MMEngine
   0.10.7 calls ``torch.load`` without the argument, so its own training
   checkpoints (resume, ``load_from``, a teacher saved by a training run)
   fail on the ``HistoryBuffer`` and numpy scalars in their message hub
   (mmengine issue 1655). We add exactly those types to torch's safe
   globals, and for the ``getattr(HistoryBuffer, 'mean')`` calls that
   pickle writes for its statistics methods, a getattr that resolves
   nothing else: safe loading stays on for every file.
3. An mmcv compiled without CUDA kernels (``MMDIST_MMCV=full make
   install`` on a machine without nvcc) raises ``<op>_impl: implementation
   for device cuda:0 not found`` on GPU tensors. The ops that mmdist has in
   torch/torchvision (:mod:`mmdist.ops.ext`) run there on the devices mmcv
   was built without, with one warning per op in the log; where mmcv has
   CUDA kernels nothing is routed. ``MMDIST_TORCH_OPS=1`` routes them on
   every device. The default install has no compiled mmcv at all: its
   ``mmcv._ext`` is mmdist's stand-in (``_mmdist_mmcv_ext``), which is
   left alone here.
4. MMEngine formats a config with yapf each time it logs it, dumps it and
   saves a checkpoint (about a second each for a distillation config, which
   holds two or more models): the formatting is remembered by its input
   text, so a run formats its config once.
"""
import importlib
import logging
import os
import pickle
import sys
import types
from collections.abc import Mapping
from typing import Callable, Dict, FrozenSet, Iterator, List, Optional

import numpy as np
import torch
from mmengine.logging import print_log

from mmdist.ops.ext import OPS, first_tensor

_MAPPING_MODULE = 'mmrazor.structures.quantization.backend_config.mapping'
_BACKENDS = ('academic', 'native', 'tensorrt', 'openvino')
_FUSER_ALIASES = {
    'reverse2': '_reverse2',
    'reverse3': '_reverse3',
    'reverse_sequential_wrapper2': '_sequential_wrapper2',
}


def alias_renamed_fuser_helpers() -> List[str]:
    """Restore the fuser helper names MMRazor imports; return those added."""
    from torch.ao.quantization import fuser_method_mappings as fuser
    added = []
    for old, new in _FUSER_ALIASES.items():
        if not hasattr(fuser, old) and hasattr(fuser, new):
            setattr(fuser, old, getattr(fuser, new))
            added.append(old)
    return added


def import_backend_config_utils() -> bool:
    """Import the submodule BackendConfig uses unimported; True if needed."""
    import torch.ao.quantization.backend_config as backend_config
    if hasattr(backend_config, 'utils'):
        return False
    importlib.import_module('torch.ao.quantization.backend_config.utils')
    return True


def backend_configs_build_at_import() -> bool:
    """Whether MMRazor's import-time backend configs can build on this torch.

    MMRazor 1.0 calls ``BackendPatternConfig._set_overwrite_output_*``,
    private methods that torch 2.1 removed.
    """
    from torch.ao.quantization.backend_config import BackendPatternConfig
    return hasattr(BackendPatternConfig,
                   '_set_overwrite_output_fake_quantize')


class LazyBackendConfigs(Mapping):
    """MMRazor's ``BackendConfigs``, each built on first use.

    A backend that cannot be built on this torch raises a RuntimeError that
    says so, instead of breaking ``import mmrazor.models`` for everyone.
    """

    def __init__(self) -> None:
        self._built: Dict[str, object] = {}

    def _getter(self, name: str) -> Callable[[], object]:
        module = importlib.import_module(
            f'mmrazor.structures.quantization.backend_config.{name}')
        return getattr(module, f'get_{name}_backend_config')

    def __getitem__(self, name: str) -> object:
        if name not in _BACKENDS:
            raise KeyError(name)
        if name not in self._built:
            try:
                self._built[name] = self._getter(name)()
            except Exception as exc:
                raise RuntimeError(
                    f"MMRazor's {name!r} quantization backend config does not "
                    f'build on torch {torch.__version__} (mmrazor 1.0 targets '
                    'torch < 2.1). Quantization is unavailable here; '
                    f'distillation is not affected. Cause: {exc!r}') from exc
        return self._built[name]

    def __iter__(self) -> Iterator[str]:
        return iter(_BACKENDS)

    def __len__(self) -> int:
        return len(_BACKENDS)


def defer_backend_configs() -> bool:
    """Install the lazy ``BackendConfigs`` module; True if it was needed."""
    if _MAPPING_MODULE in sys.modules or backend_configs_build_at_import():
        return False
    module = types.ModuleType(_MAPPING_MODULE)
    module.__doc__ = 'Lazy stand-in installed by mmdist.compat.'
    module.BackendConfigs = LazyBackendConfigs()
    sys.modules[_MAPPING_MODULE] = module
    return True


def history_buffer_getattr(owner: object, name: str) -> object:
    """``getattr`` restricted to the statistics methods of HistoryBuffer."""
    from mmengine.logging import HistoryBuffer
    names = set(HistoryBuffer._statistics_methods) | {
        'min', 'max', 'current', 'mean'
    }
    if owner is HistoryBuffer and name in names:
        return getattr(HistoryBuffer, name)
    raise pickle.UnpicklingError(
        'weights_only loading (with mmdist.compat) resolves getattr only for '
        f'HistoryBuffer statistics methods; refused getattr({owner!r}, '
        f'{name!r})')


def mmengine_checkpoint_globals() -> list:
    """The non-tensor types that MMEngine writes into its checkpoints."""
    from mmengine.logging import HistoryBuffer
    types_ = [
        HistoryBuffer,
        (history_buffer_getattr, 'builtins.getattr'),
        (history_buffer_getattr, '__builtin__.getattr'),
        np.dtype,
        np.ndarray,
    ]
    # numpy 2 moved numpy.core to numpy._core; files name either.
    multiarray = importlib.import_module(
        'numpy._core.multiarray' if hasattr(np, '_core') else
        'numpy.core.multiarray')
    for name in ('_reconstruct', 'scalar'):
        types_ += [(getattr(multiarray, name), f'{module}.{name}')
                   for module in ('numpy.core.multiarray',
                                  'numpy._core.multiarray')]
    # numpy >= 1.25 pickles dtypes through their classes (Float64DType, ...).
    dtypes = getattr(np, 'dtypes', None)
    if dtypes is not None:
        types_ += [
            getattr(dtypes, name) for name in dir(dtypes)
            if name.endswith('DType')
        ]
    return types_


def allow_mmengine_checkpoints() -> bool:
    """Let weights_only loading read MMEngine checkpoints; True if needed."""
    serialization = torch.serialization
    if not hasattr(serialization, 'add_safe_globals'):
        return False  # torch < 2.4: torch.load still unpickles freely
    serialization.add_safe_globals(mmengine_checkpoint_globals())
    return True


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
                f'on {device} ({why}; see mmdist/compat.py)',
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


def allow_removing_any_default_hook() -> bool:
    """Let ``default_hooks.<name>=None`` remove any default hook.

    MMEngine 0.10 removes only its own six default hooks that way and
    asserts, with no message, for a name of its own choosing such as
    mmdist's ``teacher_eval``. A None entry is dropped before MMEngine
    sees it; returns whether the Runner was patched (once).
    """
    from mmengine.runner import Runner
    register = Runner.register_default_hooks
    if getattr(register, '_mmdist_drops_none', False):
        return False

    def register_default_hooks(self, hooks=None):
        if hooks is not None:
            builtin = ('runtime_info', 'timer', 'sampler_seed', 'logger',
                       'param_scheduler', 'checkpoint')
            hooks = {name: hook for name, hook in hooks.items()
                     if hook is not None or name in builtin}
        return register(self, hooks)

    register_default_hooks._mmdist_drops_none = True
    Runner.register_default_hooks = register_default_hooks
    return True


def memoize_config_formatting(size: int = 8) -> bool:
    """Remember the last ``size`` configs that MMEngine formatted with yapf
    (``Config.pretty_text``), by their unformatted text: the same text
    formats to the same code. Returns whether it was patched (once)."""
    from mmengine.config import config as config_module
    format_code = config_module.FormatCode
    if getattr(format_code, '_mmdist_memoized', False):
        return False
    formatted: Dict[tuple, tuple] = {}

    def memoized(text: str, style_config=None, **kwargs):
        style = tuple(sorted(style_config.items())) if isinstance(
            style_config, dict) else style_config
        key = (text, style, tuple(sorted(kwargs.items())))
        if key not in formatted:
            if len(formatted) >= size:
                formatted.pop(next(iter(formatted)))
            formatted[key] = format_code(text, style_config=style_config,
                                         **kwargs)
        return formatted[key]

    memoized._mmdist_memoized = True
    config_module.FormatCode = memoized
    return True


def apply() -> Dict[str, object]:
    """Apply every fix whose problem is present; idempotent.

    Returns:
        What each fix did, for logging and tests.
    """
    return dict(
        fuser_aliases=alias_renamed_fuser_helpers(),
        backend_config_utils=import_backend_config_utils(),
        lazy_backend_configs=defer_backend_configs(),
        mmengine_checkpoints=allow_mmengine_checkpoints(),
        routed_mmcv_ops=route_mmcv_ops(),
        default_hooks_none=allow_removing_any_default_hook(),
        memoized_config_formatting=memoize_config_formatting(),
    )
