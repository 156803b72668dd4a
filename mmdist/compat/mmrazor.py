"""MMRazor's quantization imports and its in-place guard on current torch."""
import importlib
import sys
import types
from collections.abc import Mapping
from typing import Callable, Dict, Iterator, List

import torch
from torch import nn

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


def _set_module_inplace_false(self, architecture: nn.Module,
                              varstr: str) -> None:
    """MMRazor's ``BaseAlgorithm.set_module_inplace_false`` as its
    docstring says: every module of ``architecture`` that has a boolean
    ``inplace`` attribute (activations, dropout, mmcv's ``Scale``) gets
    ``inplace=False``, so that what a recorder records is what its module
    returned, not what a later in-place activation made of it."""
    if not isinstance(architecture, nn.Module):
        return
    for module in architecture.modules():
        if isinstance(getattr(module, 'inplace', None), bool):
            module.inplace = False


def inplace_walk_is_a_no_op() -> bool:
    """Whether MMRazor's walk misses every submodule on this torch: it
    recurses into ``module._modules`` only where that is an
    ``OrderedDict``, and torch now keeps a plain dict there (2.14 does)."""
    from typing import OrderedDict
    return not isinstance(nn.Sequential(nn.ReLU())._modules, OrderedDict)


def restore_inplace_guard() -> bool:
    """Make ``set_module_inplace_false``, which MMRazor's algorithms call
    on the student (``module_inplace=False``, the default) and the teacher
    (``teacher_module_inplace=False``), reach every submodule again where
    it reaches none; True if it was replaced (once)."""
    from mmrazor.models.algorithms.base import BaseAlgorithm
    current = BaseAlgorithm.set_module_inplace_false
    if current is _set_module_inplace_false or not inplace_walk_is_a_no_op():
        return False
    _set_module_inplace_false.stock = current
    BaseAlgorithm.set_module_inplace_false = _set_module_inplace_false
    return True
