"""torch/torchvision stand-ins for mmcv ops (see :mod:`mmdist.compat`)."""
