"""torch/torchvision versions of mmcv's compiled ops, one module per op
family; :mod:`mmdist.ops.ext` is their table (see ``_mmdist_mmcv_ext`` and
:mod:`mmdist.compat` for where they are used)."""

#: How to get the ops that have no torch version here.
FULL_MMCV_HINT = (
    'build mmcv with its compiled ops instead of mmcv-lite: '
    '`MMDIST_MMCV=full make install` (see README, "Installing")')
