"""mmdist: DIST knowledge distillation for OpenMMLab detection,
segmentation and classification.

Importing mmdist (``custom_imports=dict(imports=['mmdist'])``) applies the
compatibility fixes of :mod:`mmdist.compat` and registers mmdist's modules
under the ``mmdist`` registry scope.
"""
import _mmdist_mmcv_ext  # noqa: F401  (normally done at start by its .pth)

try:
    import mmcv  # noqa: F401
except ModuleNotFoundError as error:
    if error.name != 'mmcv':
        raise
    # mmcv is no dependency of mmdist's: a compiled mmcv that a user has
    # must stay, and pip cannot say "mmcv or mmcv-lite" (docs/install.md).
    raise ModuleNotFoundError(
        "No module named 'mmcv'. mmdist, mmdet, mmseg and mmpretrain need "
        'mmcv 2.1.0, and installing mmdist does not install it (it would '
        'replace a compiled mmcv). Install its Python code, whose compiled '
        'ops mmdist provides: pip install mmcv-lite==2.1.0',
        name='mmcv') from None

from . import compat  # noqa: E402

__version__ = '0.1.0'

compat.apply()

from . import datasets, engine, models  # noqa: E402,F401  registers them
