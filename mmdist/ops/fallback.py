"""torch/torchvision implementations of the mmcv ops that the paper's
detectors call, with the signatures of mmcv's compiled ``_ext`` functions.

mmcv 2.1.0 has no wheel for current torch, and a source build without CUDA
kernels raises ``<op>_impl: implementation for device cuda:0 not found`` on
GPU tensors. :func:`mmdist.compat.route_mmcv_ops` puts these functions in
front of mmcv's for the devices that mmcv was built without. Each one takes
the arguments that mmcv's Python wrappers (``NMSop``, ``RoIAlignFunction``,
``SigmoidFocalLossFunction``) pass to ``_ext`` and, like the compiled
kernels, returns or writes in place what those wrappers read back.

- ``nms``: torchvision's kernel on the order that mmcv's own kernel uses
  (``scores.sort(descending=True)`` on the same device), so ties keep the
  same boxes; the IoU threshold is rounded to float32 as mmcv's C++ does.
- ``roi_align_forward`` / ``roi_align_backward``: torchvision's RoIAlign
  (the same bilinear sampling as mmcv's ``avg`` mode, ``aligned`` and
  ``sampling_ratio`` included). mmcv's ``max`` mode has no torchvision
  counterpart and raises.
- ``sigmoid_focal_loss_forward`` / ``_backward``: mmdet's own
  ``py_sigmoid_focal_loss`` element by element (the loss mmdet computes on
  CPU), its gradient by autograd; half-precision inputs (``--amp``) are
  computed in float32 and written back in their own dtype.
"""
from typing import Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

_AVG_POOL = 1  # mmcv's RoIAlign pool_mode: 0 is 'max', 1 is 'avg'


def nms(bboxes: Tensor, scores: Tensor, iou_threshold: float,
        offset: int) -> Tensor:
    """Greedy NMS; the indices of the kept boxes, highest score first.

    Args:
        bboxes: ``(N, 4)`` boxes ``x1, y1, x2, y2``.
        scores: ``(N,)`` scores.
        iou_threshold: A box is dropped when its IoU with a kept box is
            greater than this.
        offset: 0, or 1 for boxes whose width is ``x2 - x1 + 1``.

    Returns:
        ``(K,)`` int64 indices into ``bboxes``.
    """
    from torchvision.ops import nms as tv_nms
    if bboxes.numel() == 0:
        return bboxes.new_empty(0, dtype=torch.long)
    order = scores.sort(0, descending=True)[1]
    boxes = bboxes[order]
    if offset:
        # x2 + 1 gives the same width and intersections as mmcv's +1 terms.
        boxes = boxes + boxes.new_tensor([0, 0, offset, offset])
    # Strictly decreasing stand-in scores: torchvision keeps this order.
    rank = torch.arange(len(order), 0, -1, device=bboxes.device,
                        dtype=torch.float32)
    threshold = float(torch.tensor(iou_threshold, dtype=torch.float32))
    return order[tv_nms(boxes.float(), rank, threshold)]


def _check_avg(pool_mode: int) -> None:
    if pool_mode != _AVG_POOL:
        raise NotImplementedError(
            "RoIAlign pool_mode='max' has no torch/torchvision counterpart; "
            "use pool_mode='avg' (mmdet's default) or build mmcv with CUDA "
            'kernels (scripts/install.sh does where nvcc and a GPU are found)')


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


def _focal_terms(input: Tensor, target: Tensor, weight: Tensor, gamma: float,
                 alpha: float) -> Tensor:
    """Element-wise sigmoid focal loss as mmdet's ``py_sigmoid_focal_loss``.

    ``target`` holds class indices; ``num_classes`` (one past the last
    column) is background. ``weight``, if not empty, is a per-class weight
    taken at each row's target class, as mmcv's kernel does.
    """
    num_classes = input.size(1)
    if input.dtype in (torch.float16, torch.bfloat16):
        input = input.float()  # --amp: computed in float32, stored in half
    onehot = F.one_hot(target, num_classes + 1)[:, :num_classes].type_as(input)
    prob = input.sigmoid()
    pt = (1 - prob) * onehot + prob * (1 - onehot)
    focal_weight = (alpha * onehot + (1 - alpha) *
                    (1 - onehot)) * pt.pow(gamma)
    loss = F.binary_cross_entropy_with_logits(
        input, onehot, reduction='none') * focal_weight
    if weight.numel():
        if bool((target >= num_classes).any()):
            raise ValueError(
                'a per-class focal loss weight needs a foreground target in '
                f'every row (classes 0..{num_classes - 1}); mmcv reads past '
                'the weight for background rows')
        loss = loss * weight[target].unsqueeze(1)
    return loss


def _check_target(input: Tensor, target: Tensor) -> None:
    if input.dim() != 2 or target.shape != input.shape[:1]:
        raise ValueError(
            'sigmoid focal loss expects input (N, C) and target (N,), got '
            f'{tuple(input.shape)} and {tuple(target.shape)}')


def sigmoid_focal_loss_forward(input: Tensor, target: Tensor, weight: Tensor,
                               output: Tensor, gamma: float,
                               alpha: float) -> None:
    """Write the element-wise focal loss of ``input`` ``(N, C)`` and
    ``target`` ``(N,)`` into ``output`` ``(N, C)``."""
    _check_target(input, target)
    output.copy_(_focal_terms(input, target, weight, gamma, alpha))


def sigmoid_focal_loss_backward(input: Tensor, target: Tensor,
                                weight: Tensor, grad_input: Tensor,
                                gamma: float, alpha: float) -> None:
    """Write d(element-wise loss)/d(input) into ``grad_input`` ``(N, C)``
    (mmcv's wrapper multiplies by the incoming gradient)."""
    _check_target(input, target)
    with torch.enable_grad():
        leaf = input.detach().float().requires_grad_(True)
        loss = _focal_terms(leaf, target, weight, gamma, alpha)
        grad, = torch.autograd.grad(loss.sum(), leaf)
    grad_input.copy_(grad)


#: ``_ext`` function name -> its implementation here.
FALLBACKS = {
    'nms': nms,
    'roi_align_forward': roi_align_forward,
    'roi_align_backward': roi_align_backward,
    'sigmoid_focal_loss_forward': sigmoid_focal_loss_forward,
    'sigmoid_focal_loss_backward': sigmoid_focal_loss_backward,
}


def first_tensor(args: Tuple, kwargs: dict) -> Tensor:
    """The first tensor argument of an ``_ext`` call (its device decides)."""
    for value in (*args, *kwargs.values()):
        if isinstance(value, Tensor):
            return value
    raise TypeError('an mmcv op was called without a tensor argument')
