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
"""
import importlib
import pickle
import sys
import types
from collections.abc import Mapping
from typing import Callable, Dict, Iterator, List

import numpy as np
import torch

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
        np.core.multiarray._reconstruct,
        np.core.multiarray.scalar,
    ]
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
    )
