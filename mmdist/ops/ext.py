"""The table of mmcv ``_ext`` functions that mmdist implements in
torch/torchvision, one module per op family beside this one.

Two things read it:

- the stand-in ``mmcv._ext`` of an mmcv without compiled ops (mmcv-lite),
  installed by ``_mmdist_mmcv_ext`` at interpreter start: every call goes
  to :func:`get_op`;
- :func:`mmdist.compat.route_mmcv_ops`, for an mmcv compiled without CUDA
  kernels: calls on CUDA tensors come here, the others stay with mmcv.

Each function takes the arguments that mmcv's Python wrappers pass to
``_ext`` and, like the compiled kernels, returns or writes in place what
those wrappers read back.
"""
from typing import Callable, Dict, Tuple

from torch import Tensor

from . import (FULL_MMCV_HINT, bbox_overlaps, carafe, deform_conv,
               deform_roi_pool, focal_loss, masked_conv, ms_deform_attn, nms,
               nms_match, psamask, roi_align, roi_pool, softnms)

#: ``_ext`` function name -> its torch/torchvision implementation.
OPS: Dict[str, Callable] = {
    'nms': nms.nms,
    'roi_align_forward': roi_align.roi_align_forward,
    'roi_align_backward': roi_align.roi_align_backward,
    'sigmoid_focal_loss_forward': focal_loss.sigmoid_focal_loss_forward,
    'sigmoid_focal_loss_backward': focal_loss.sigmoid_focal_loss_backward,
    'softmax_focal_loss_forward': focal_loss.softmax_focal_loss_forward,
    'softmax_focal_loss_backward': focal_loss.softmax_focal_loss_backward,
    'roi_pool_forward': roi_pool.roi_pool_forward,
    'roi_pool_backward': roi_pool.roi_pool_backward,
    'deform_conv_forward': deform_conv.deform_conv_forward,
    'deform_conv_backward_input': deform_conv.deform_conv_backward_input,
    'deform_conv_backward_parameters':
    deform_conv.deform_conv_backward_parameters,
    'modulated_deform_conv_forward': deform_conv.modulated_deform_conv_forward,
    'modulated_deform_conv_backward':
    deform_conv.modulated_deform_conv_backward,
    'ms_deform_attn_forward': ms_deform_attn.ms_deform_attn_forward,
    'ms_deform_attn_backward': ms_deform_attn.ms_deform_attn_backward,
    'psamask_forward': psamask.psamask_forward,
    'psamask_backward': psamask.psamask_backward,
    'deform_roi_pool_forward': deform_roi_pool.deform_roi_pool_forward,
    'deform_roi_pool_backward': deform_roi_pool.deform_roi_pool_backward,
    'carafe_forward': carafe.carafe_forward,
    'carafe_backward': carafe.carafe_backward,
    'carafe_naive_forward': carafe.carafe_naive_forward,
    'carafe_naive_backward': carafe.carafe_naive_backward,
    'masked_im2col_forward': masked_conv.masked_im2col_forward,
    'masked_col2im_forward': masked_conv.masked_col2im_forward,
    'softnms': softnms.softnms,
    'nms_match': nms_match.nms_match,
    'bbox_overlaps': bbox_overlaps.bbox_overlaps,
}


class MissingOpError(NotImplementedError):
    """An mmcv op that neither a compiled mmcv nor mmdist provides."""


def get_op(name: str) -> Callable:
    """The implementation of ``mmcv._ext.<name>``.

    Raises:
        MissingOpError: ``name`` has no torch version in mmdist.
    """
    try:
        return OPS[name]
    except KeyError:
        raise MissingOpError(
            f'mmcv op {name!r} is not available: this mmcv has no compiled '
            f'ops and mmdist has no torch version of it (it has: '
            f'{", ".join(sorted(OPS))}). To use it, {FULL_MMCV_HINT}.'
        ) from None


def first_tensor(args: Tuple, kwargs: dict) -> Tensor:
    """The first tensor argument of an ``_ext`` call (its device decides)."""
    for value in (*args, *kwargs.values()):
        if isinstance(value, Tensor):
            return value
    raise TypeError('an mmcv op was called without a tensor argument')
