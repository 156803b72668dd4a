"""MMEngine 0.10: its training checkpoints under torch's safe loading, any
default hook removed by None, and a config formatted once."""
import importlib
import pickle
from typing import Dict

import numpy as np
import torch


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


def _collate_scope(dataloader: object) -> tuple:
    """(``dataloader`` without its ``collate_fn``'s ``_scope_``, that
    scope or None)."""
    if not isinstance(dataloader, dict):
        return dataloader, None
    collate = dataloader.get('collate_fn')
    if not isinstance(collate, dict) or '_scope_' not in collate:
        return dataloader, None
    collate = dict(collate)
    scope = collate.pop('_scope_')
    return dict(dataloader, collate_fn=collate), scope


def allow_scoped_collate_fn() -> bool:
    """Let a dataloader's ``collate_fn`` carry the ``_scope_`` that MMEngine
    gives every typed dict of a config inherited from another package
    (``_base_ = 'mmyolo::...'``: ``collate_fn=dict(type='yolov5_collate',
    _scope_='mmyolo')``). MMEngine 0.10's ``Runner.build_dataloader`` passes
    every key but ``type`` to the function, which fails ("yolov5_collate()
    got an unexpected keyword argument '_scope_'"); it is taken out and the
    function found in that scope, as ``_scope_`` means for what registries
    build. Returns whether the Runner was patched (once)."""
    from mmengine.registry import DefaultScope
    from mmengine.runner import Runner
    build = Runner.__dict__['build_dataloader'].__func__
    if getattr(build, '_mmdist_scoped', False):
        return False

    def build_dataloader(dataloader, *args, **kwargs):
        dataloader, scope = _collate_scope(dataloader)
        if scope is None:
            return build(dataloader, *args, **kwargs)
        with DefaultScope.overwrite_default_scope(scope):
            return build(dataloader, *args, **kwargs)

    build_dataloader._mmdist_scoped = True
    build_dataloader.stock = build
    build_dataloader.__doc__ = build.__doc__
    Runner.build_dataloader = staticmethod(build_dataloader)
    return True
