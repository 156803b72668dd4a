"""torch/torchvision versions of mmcv's compiled ops, one module per op
family; :mod:`mmdist.ops.ext` is their table (see ``_mmdist_mmcv_ext`` and
:mod:`mmdist.compat` for where they are used)."""
import torch

#: How to get the ops that have no torch version here.
FULL_MMCV_HINT = (
    'build mmcv with its compiled ops instead of mmcv-lite: '
    '`MMDIST_MMCV=full make install` (see docs/install.md)')


def compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """The dtype an op computes in: float32 for half-precision inputs
    (``--amp``), whose results are written back in their own dtype; any
    other dtype as it is."""
    return torch.float32 if dtype in (torch.float16, torch.bfloat16) \
        else dtype
