"""Setup shim for OpenMMLab's install guides (``pip install -v -e .``).

The package's metadata and dependencies live in pyproject.toml. This file
only adds the start-up hook: ``mmdist-mmcv-ext.pth`` goes into
site-packages next to ``_mmdist_mmcv_ext``, in a regular and in an editable
install alike, so that every Python process of the environment finds a
stand-in ``mmcv._ext`` where mmcv has no compiled ops.

An editable install gets a copy of ``_mmdist_mmcv_ext.py`` too: found
through setuptools' editable finder it took 2.4 ms at every start, as a
file in site-packages 0.3 ms. ``make install`` copies it again when it
changes.
"""
import os
import shutil

from setuptools import setup
from setuptools.command.build_py import build_py

PTH = 'mmdist-mmcv-ext.pth'
PTH_LINE = 'import _mmdist_mmcv_ext\n'
HOOK = '_mmdist_mmcv_ext.py'


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
        if getattr(self, 'editable_mode', False):
            shutil.copyfile(HOOK, os.path.join(self._hook_dir(), HOOK))

    def get_outputs(self, include_bytecode: bool = True) -> list:
        outputs = super().get_outputs(include_bytecode)
        if not getattr(self, 'editable_mode', False):
            outputs.append(os.path.join(self.build_lib, PTH))
        return outputs


setup(cmdclass={'build_py': BuildPyWithHook})
