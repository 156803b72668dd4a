"""NMS with the signature of mmcv's ``_ext.nms``.

torchvision's kernel runs on the order that mmcv's own kernel uses
(``scores.sort(descending=True)`` on the same device), so ties keep the same
boxes; the IoU threshold is rounded to float32 as mmcv's C++ does.
"""
import torch
from torch import Tensor


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
