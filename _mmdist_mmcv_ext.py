"""Provide ``mmcv._ext`` where no compiled one is installed (mmcv-lite).

Imported at interpreter start by ``mmdist-mmcv-ext.pth``, which mmdist's
install puts into site-packages, so that mmdet's and mmseg's own tools and a
bare ``import mmdet.models`` find mmcv's ops without importing mmdist.

It only appends a finder to ``sys.meta_path``: nothing else is imported at
start. The finder comes after Python's own, so a compiled ``mmcv/_ext`` on
the path is always found first and used unchanged. The stand-in module
imports nothing either: ``mmcv.ops`` only checks that the names exist, and
an op's torch version (:mod:`mmdist.ops.ext`) is imported at its first call,
when ``mmcv.ops`` has finished importing.

It also lets MMEngine read mmdist's configs as ``mmdist::<file>.py``
(``_base_``, ``mmengine.hub.get_config``, a teacher's ``cfg_path``) from
the installed package, ``mmdist/.mim/configs``, as it reads
``mmdet::...``: a second finder, first in ``sys.meta_path`` but answering
only for two MMEngine modules, lets them load unchanged and then adds
mmdist to their package table (and, for configs directly in that folder,
to their path parsing, which wants ``<dir>/<file>``) and finds mmdist's
folder for an editable install too. This has to happen at start-up:
MMEngine resolves ``_base_`` before it imports a config's
``custom_imports``. Nothing in site-packages is edited.

A third finder answers for ``mmyolo`` alone: mmyolo 0.6.0 asserts
``mmcv < 2.1.0`` when imported, which mmdet 3.3's mmcv 2.1 fails. Where
that assertion is what fails, mmyolo's ``__init__`` runs again with mmcv's
version in mmyolo's range, and mmcv's own is restored at once
(:mod:`mmdist.compat`, fix 7). It has to be in place at start-up too:
mmyolo's own tools import mmyolo before anything imports mmdist.
"""
import os
import sys

_NAME = 'mmcv._ext'
_VERSION_INFO = {
    'get_compiler_version': 'none (mmdist: torch/torchvision ops, no build)',
    'get_compiling_cuda_version': 'not available',
}


class _Op:
    """One function of the stand-in; resolved on its first call."""

    def __init__(self, name: str) -> None:
        self.__name__ = self.__qualname__ = name
        self._impl = None

    def __call__(self, *args, **kwargs):
        if self._impl is None:
            from mmdist.ops.ext import get_op
            self._impl = get_op(self.__name__)
        return self._impl(*args, **kwargs)

    def __repr__(self) -> str:
        return f'<mmdist stand-in for {_NAME}.{self.__name__}>'


class StandInFinder:
    """Finds ``mmcv._ext`` when every other finder has not."""

    @classmethod
    def find_spec(cls, fullname, path=None, target=None):
        if fullname != _NAME:
            return None
        from importlib.machinery import ModuleSpec
        return ModuleSpec(fullname, cls, origin='mmdist')

    @staticmethod
    def create_module(spec):
        return None  # the default module object

    @staticmethod
    def exec_module(module) -> None:
        module.__doc__ = ('mmdist stand-in for mmcv._ext: mmcv ops through '
                          'torch/torchvision (mmdist.ops)')
        module.MMDIST_STANDIN = True
        for name, value in _VERSION_INFO.items():
            setattr(module, name, lambda value=value: value)

        def __getattr__(name: str) -> _Op:
            # mmcv.ops asks for every name it binds; each is made once.
            if name.startswith('__'):
                raise AttributeError(name)
            op = _Op(name)
            setattr(module, name, op)
            return op

        module.__getattr__ = __getattr__


_PACKAGE = 'mmdist'
_PREFIX = _PACKAGE + '::'
# Where MMEngine binds its own functions by name, besides their modules.
_BINDERS = ('mmengine.utils', 'mmengine.config.config', 'mmengine.hub.hub')


def _replace(module, name: str, make) -> None:
    """``module.<name> = make(original)``, and the same in every MMEngine
    module already bound to the original."""
    original = getattr(module, name)
    if getattr(original, '_mmdist', False):
        return
    patched = make(original)
    patched._mmdist = True
    setattr(module, name, patched)
    for binder in _BINDERS:
        loaded = sys.modules.get(binder)
        if loaded is not None and getattr(loaded, name, None) is original:
            setattr(loaded, name, patched)


def _package_dir() -> str:
    """mmdist's folder, found without importing it (an editable install's
    too, which ``pkg_resources`` places in site-packages)."""
    import importlib.util  # not at start-up: only when MMEngine asks
    spec = importlib.util.find_spec(_PACKAGE)
    return os.path.dirname(spec.origin)


def _patch_package_utils(module) -> None:
    def make(get_installed_path):
        def patched(package: str) -> str:
            if package == _PACKAGE:
                return _package_dir()
            return get_installed_path(package)
        return patched
    _replace(module, 'get_installed_path', make)


def _patch_config_utils(module) -> None:
    module.MODULE2PACKAGE.setdefault(_PACKAGE, _PACKAGE)

    def make(get_package_and_cfg_path):
        def patched(cfg_path: str):
            # MMEngine wants '<pkg>::<dir>/<file>'; mmdist's configs are
            # mostly at the top of its config folder.
            if cfg_path.startswith(_PREFIX) and cfg_path.count('::') == 1:
                return _PACKAGE, cfg_path[len(_PREFIX):]
            return get_package_and_cfg_path(cfg_path)
        return patched
    _replace(module, '_get_package_and_cfg_path', make)


_AFTER_IMPORT = {
    'mmengine.utils.package_utils': _patch_package_utils,
    'mmengine.config.utils': _patch_config_utils,
}


class _PatchingLoader:
    """Runs a module's own loader, then mmdist's patch of the module."""

    def __init__(self, loader, patch) -> None:
        self._loader, self._patch = loader, patch

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module) -> None:
        self._loader.exec_module(module)
        self._patch(module)

    def __getattr__(self, name: str):
        return getattr(self._loader, name)  # get_source, get_code, ...


class MMEngineHookFinder:
    """First in ``sys.meta_path``; answers for the modules of
    ``_AFTER_IMPORT`` only, found by the finders after it."""

    @classmethod
    def find_spec(cls, fullname, path=None, target=None):
        patch = _AFTER_IMPORT.get(fullname)
        if patch is None:
            return None
        for finder in sys.meta_path:
            if finder is cls or not hasattr(finder, 'find_spec'):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                if spec.loader is not None:
                    spec.loader = _PatchingLoader(spec.loader, patch)
                return spec
        return None


# mmyolo 0.6.0's __init__ asserts mmcv >= 2.0.0rc4, < 2.1.0, and mmdet 3.3
# needs mmcv 2.1: where that assertion is what stops ``import mmyolo``, its
# __init__ runs once more, seeing this release in its range as mmcv's
# version; mmcv's own is back as soon as it has run.
_MMYOLO = 'mmyolo'
_MMCV_IN_MMYOLO_RANGE = '2.0.1'


class _MMYoloLoader(_PatchingLoader):
    """Runs mmyolo's __init__; again, with mmcv's version in its range,
    only if the version assertion of mmcv is what failed."""

    def exec_module(self, module) -> None:
        try:
            self._loader.exec_module(module)
            return
        except AssertionError as error:
            mmcv = sys.modules.get('mmcv')
            if mmcv is None or not str(error).startswith(
                    f'MMCV=={mmcv.__version__} is used but incompatible'):
                raise
        real, mmcv.__version__ = mmcv.__version__, _MMCV_IN_MMYOLO_RANGE
        try:
            self._loader.exec_module(module)
        finally:
            mmcv.__version__ = real


class MMYoloFinder:
    """Before Python's finders: answers for ``mmyolo`` alone, with the spec
    the finders after it find and :class:`_MMYoloLoader` around its
    loader."""

    @classmethod
    def find_spec(cls, fullname, path=None, target=None):
        if fullname != _MMYOLO:
            return None
        for finder in sys.meta_path:
            if finder is cls or not hasattr(finder, 'find_spec'):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                if spec.loader is not None:
                    spec.loader = _MMYoloLoader(spec.loader, None)
                return spec
        return None


def install_mmyolo_finder() -> bool:
    """Put :class:`MMYoloFinder` first in ``sys.meta_path`` once; True if
    it was added now."""
    if MMYoloFinder in sys.meta_path:
        return False
    sys.meta_path.insert(0, MMYoloFinder)
    return True


def install() -> bool:
    """Put the finders in place once (the stand-in last, the MMEngine and
    mmyolo hooks first), patching the MMEngine modules already imported;
    True if they were added now."""
    if any(finder is StandInFinder for finder in sys.meta_path):
        return False
    sys.meta_path.append(StandInFinder)
    sys.meta_path.insert(0, MMEngineHookFinder)
    install_mmyolo_finder()
    for name, patch in _AFTER_IMPORT.items():
        if name in sys.modules:
            patch(sys.modules[name])
    return True


install()
