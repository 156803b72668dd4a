"""mmdist: DIST knowledge distillation for OpenMMLab detection,
segmentation and classification.

Importing mmdist (``custom_imports=dict(imports=['mmdist'])``) applies the
compatibility fixes of :mod:`mmdist.compat` and registers mmdist's modules
under the ``mmdist`` registry scope.
"""
import _mmdist_mmcv_ext  # noqa: F401  (normally done at start by its .pth)

from . import compat

__version__ = '0.1.0'

compat.apply()

from . import datasets, engine, models  # noqa: E402,F401  registers them
