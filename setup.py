"""Setup shim for OpenMMLab's install guides (``pip install -v -e .``).

The package's metadata and dependencies live in pyproject.toml. This file
only adds the start-up hook: ``mmdist-mmcv-ext.pth`` goes into
site-packages next to ``_mmdist_mmcv_ext``, in a regular and in an editable
install alike, so that every Python process of the environment finds a
stand-in ``mmcv._ext`` where mmcv has no compiled ops.
"""
import os

from setuptools import setup
from setuptools.command.build_py import build_py

PTH = 'mmdist-mmcv-ext.pth'
PTH_LINE = 'import _mmdist_mmcv_ext\n'


class BuildPyWithHook(build_py):
    """build_py that also writes the ``.pth`` start-up hook."""

    def _hook_dir(self) -> str:
        if getattr(self, 'editable_mode', False):
            # An editable wheel ships what is written into its install_lib
            # (the unpacked wheel), not what is in build_lib.
            return self.distribution.get_command_obj('install').install_lib
        return self.build_lib

    def run(self) -> None:
        super().run()
        target = os.path.join(self._hook_dir(), PTH)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with open(target, 'w') as f:
            f.write(PTH_LINE)

    def get_outputs(self, include_bytecode: bool = True) -> list:
        outputs = super().get_outputs(include_bytecode)
        if not getattr(self, 'editable_mode', False):
            outputs.append(os.path.join(self.build_lib, PTH))
        return outputs


setup(cmdclass={'build_py': BuildPyWithHook})
