"""RoIAlign with the signatures of mmcv's ``_ext.roi_align_forward`` and
``_ext.roi_align_backward``.

torchvision's RoIAlign is the same bilinear sampling as mmcv's ``avg`` mode,
``aligned`` and ``sampling_ratio`` included. mmcv's ``max`` mode has no
torchvision counterpart and raises.
"""
import torch
from torch import Tensor

from . import FULL_MMCV_HINT

_AVG_POOL = 1  # mmcv's RoIAlign pool_mode: 0 is 'max', 1 is 'avg'


def _check_avg(pool_mode: int) -> None:
    if pool_mode != _AVG_POOL:
        raise NotImplementedError(
            "RoIAlign pool_mode='max' has no torch/torchvision counterpart; "
            "use pool_mode='avg' (mmdet's default), or "
            f'{FULL_MMCV_HINT}')


def roi_align_forward(input: Tensor, rois: Tensor, output: Tensor,
                      argmax_y: Tensor, argmax_x: Tensor, aligned_height: int,
                      aligned_width: int, spatial_scale: float,
                      sampling_ratio: int, pool_mode: int,
                      aligned: bool) -> None:
    """RoIAlign of ``input`` ``(B, C, H, W)`` over ``rois`` ``(K, 5)``
    (batch index, x1, y1, x2, y2), written into ``output``
    ``(K, C, aligned_height, aligned_width)``."""
    from torchvision.ops import roi_align
    _check_avg(pool_mode)
    output.copy_(
        roi_align(input, rois.to(input.dtype),
                  (aligned_height, aligned_width), spatial_scale,
                  sampling_ratio, aligned))


def roi_align_backward(grad_output: Tensor, rois: Tensor, argmax_y: Tensor,
                       argmax_x: Tensor, grad_input: Tensor,
                       aligned_height: int, aligned_width: int,
                       spatial_scale: float, sampling_ratio: int,
                       pool_mode: int, aligned: bool) -> None:
    """Add the gradient of :func:`roi_align_forward` w.r.t. its input to
    ``grad_input`` ``(B, C, H, W)``."""
    import torchvision  # noqa: F401  registers torch.ops.torchvision
    _check_avg(pool_mode)
    batch, channels, height, width = grad_input.shape
    grad_input.add_(
        torch.ops.torchvision._roi_align_backward(
            grad_output, rois.to(grad_output.dtype), spatial_scale,
            aligned_height, aligned_width, batch, channels, height, width,
            sampling_ratio, aligned))
