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
"""
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


def install() -> bool:
    """Append the finder once; True if it was added now."""
    if any(finder is StandInFinder for finder in sys.meta_path):
        return False
    sys.meta_path.append(StandInFinder)
    return True


install()
