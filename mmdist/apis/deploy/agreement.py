"""How far the exported model's predictions are from PyTorch's, per task.

Both run on the same images through the same test pipeline and
preprocessor; each task is compared by what it predicts:

- detection: each PyTorch box is matched to the ONNX Runtime box of its
  class with the largest IoU, then the closest score (two boxes whose
  corners are within 0.01 pixels are the same, whatever their area); the
  share of boxes matched at IoU >= 0.5 (both ways), the smallest IoU of a
  match, the largest score and coordinate differences. Inverted boxes
  (``x2 < x1`` or ``y2 < y1``) are counted, not compared: ONNX's
  NonMaxSuppression orders each box's corners and mmcv's ``nms`` does not,
  so the two keep different sets of them by design. Boxes scored within
  :data:`TIE_SCORE` of the cut-off (the lowest score kept, the same on
  both sides) that find no counterpart, as many on each side, are counted
  (``at_cutoff``), not compared: which of tied boxes fills the last place
  is arbitrary;
- segmentation: the share of pixels with the same label;
- classification: the share of images with the same top-1 class and the
  same five top classes, and the largest probability difference.

The pass thresholds are :data:`TOLERANCES` (docs/deploy.md states them).
"""
from typing import Dict, List, Sequence

import torch
from mmengine.structures import BaseDataElement

# What the exported model must agree on to pass (docs/deploy.md).
TOLERANCES: Dict[str, Dict[str, float]] = {
    # Boxes after NMS: the last of the kept boxes can differ where two
    # scores tie to float rounding, hence not all of them.
    'detection': dict(matched=0.98, min_iou=0.99, max_score_diff=1e-3),
    'segmentation': dict(pixels=0.999),
    'classification': dict(top1=1.0, top5=1.0, max_prob_diff=1e-4),
}
TOLERANCES['yolo'] = TOLERANCES['detection']
MATCH_IOU = 0.5
MIN_IOU = TOLERANCES['detection']['min_iou']
SAME_BOX_PX = 0.01  # coordinates this close are the same box
TIE_SCORE = 1e-6  # scores this close to the cut-off are tied with it


def clip_to_image(sample: BaseDataElement) -> BaseDataElement:
    """Clip a detection sample's boxes to its original image, in place.

    PyTorch's detectors clip boxes to the image; mmdeploy's exported
    single-stage detectors clip them to the padded network input, which
    is larger: mmdist clips the exported model's boxes as PyTorch does.
    """
    height, width = sample.metainfo['ori_shape'][:2]
    boxes = sample.pred_instances.bboxes
    boxes[:, 0::2] = boxes[:, 0::2].clamp(0, width)
    boxes[:, 1::2] = boxes[:, 1::2].clamp(0, height)
    return sample


def _iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """IoU of every box of ``a`` (N, 4) with every box of ``b`` (M, 4)."""
    lt = torch.max(a[:, None, :2], b[None, :, :2])
    rb = torch.min(a[:, None, 2:], b[None, :, 2:])
    inter = (rb - lt).clamp(min=0).prod(-1)
    area_a = (a[:, 2:] - a[:, :2]).clamp(min=0).prod(-1)
    area_b = (b[:, 2:] - b[:, :2]).clamp(min=0).prod(-1)
    return inter / (area_a[:, None] + area_b[None, :] - inter).clamp(
        min=1e-12)


def _match(ours, theirs) -> List[tuple]:
    """Greedy matching, PyTorch's boxes by descending score: (i, j, IoU)
    of each PyTorch box i and the unmatched exported box j of its class
    with the largest IoU, where that IoU is at least :data:`MATCH_IOU`."""
    if len(ours) == 0 or len(theirs) == 0:
        return []
    a, b = ours.bboxes.double(), theirs.bboxes.double()
    iou = _iou(a, b)
    # The same box, also where it has no area (an untrained detector's
    # points), whose IoU is 0/0.
    same = ((a[:, None] - b[None]).abs() <= SAME_BOX_PX).all(-1)
    iou[same] = 1.0
    iou[ours.labels[:, None] != theirs.labels[None, :]] = -1
    score_diff = (ours.scores.double()[:, None] -
                  theirs.scores.double()[None]).abs()
    taken, pairs = set(), []
    for i in ours.scores.argsort(descending=True).tolist():
        # Among boxes of the same IoU (clipped to the same image border),
        # the one of the closest score is this box's counterpart.
        candidates = [(iou[i, j].item(), -score_diff[i, j].item(), j)
                      for j in range(len(theirs)) if j not in taken]
        if not candidates:
            break
        best, _, j = max(candidates)
        if best >= MATCH_IOU:
            taken.add(j)
            pairs.append((i, j, best))
    return pairs


def inverted(instances) -> torch.Tensor:
    """Which boxes have ``x2 < x1`` or ``y2 < y1`` (an undertrained
    regression branch predicts them)."""
    boxes = instances.bboxes
    return (boxes[:, 2] < boxes[:, 0]) | (boxes[:, 3] < boxes[:, 1])


def _loose(instances, paired: Dict[int, float]) -> List[int]:
    """The boxes scored within :data:`TIE_SCORE` of the lowest score kept
    that have no counterpart at :data:`MIN_IOU`."""
    cut = instances.scores.min() + TIE_SCORE
    return [i for i, score in enumerate(instances.scores.tolist())
            if score <= cut and paired.get(i, 0.0) < MIN_IOU]


def _kept(count: int, dropped: set) -> torch.Tensor:
    return torch.tensor([i not in dropped for i in range(count)],
                        dtype=torch.bool)


def compare_detections(torch_samples: Sequence[BaseDataElement],
                       onnx_samples: Sequence[BaseDataElement]) -> dict:
    """Detections of PyTorch and of the exported model, pooled over the
    images; inverted boxes counted apart (``inverted_*``)."""
    pairs = counts = others = at_cutoff = 0
    inverted_ours = inverted_theirs = 0
    ious, score_diffs, box_diffs = [], [], []
    for ours, theirs in zip(torch_samples, onnx_samples):
        ours, theirs = ours.pred_instances, theirs.pred_instances
        flipped_ours, flipped_theirs = inverted(ours), inverted(theirs)
        inverted_ours += int(flipped_ours.sum())
        inverted_theirs += int(flipped_theirs.sum())
        ours, theirs = ours[~flipped_ours], theirs[~flipped_theirs]
        matched = _match(ours, theirs)
        # Boxes at the cut-off (the last places of max_per_img, or the
        # score threshold), scored within float rounding of it, where the
        # two runtimes part: which of tied boxes fills a place is arbitrary.
        if len(ours) and len(theirs) and abs(
                ours.scores.min() - theirs.scores.min()) <= TIE_SCORE:
            loose_ours = _loose(ours, {i: iou for i, _, iou in matched})
            loose_theirs = _loose(theirs, {j: iou for _, j, iou in matched})
            # A box swapped for another: as many on each side.
            swapped = min(len(loose_ours), len(loose_theirs))
            excused_ours = set(loose_ours[:swapped])
            excused_theirs = set(loose_theirs[:swapped])
            matched = [(i, j, iou) for i, j, iou in matched
                       if i not in excused_ours and j not in excused_theirs]
            at_cutoff += 2 * swapped
            ours = ours[_kept(len(ours), excused_ours)]
            theirs = theirs[_kept(len(theirs), excused_theirs)]
        pairs += len(matched)
        counts += len(ours)
        others += len(theirs)
        for i, j, iou in matched:
            ious.append(iou)
            score_diffs.append(abs(ours.scores[i] - theirs.scores[j]).item())
            box_diffs.append(
                (ours.bboxes[i] - theirs.bboxes[j]).abs().max().item())
    matched = min(pairs / counts if counts else 1.0,
                  pairs / others if others else 1.0)
    return dict(
        boxes_pytorch=counts, boxes_onnx=others, matched=matched,
        min_iou=min(ious) if ious else 1.0,
        mean_iou=sum(ious) / len(ious) if ious else 1.0,
        max_score_diff=max(score_diffs, default=0.0),
        max_box_diff_px=max(box_diffs, default=0.0),
        inverted_pytorch=inverted_ours, inverted_onnx=inverted_theirs,
        at_cutoff=at_cutoff)


def compare_segmentation(torch_samples: Sequence[BaseDataElement],
                         onnx_samples: Sequence[BaseDataElement]) -> dict:
    """The share of pixels with the same label, pooled over the images."""
    same = total = 0
    for ours, theirs in zip(torch_samples, onnx_samples):
        a, b = ours.pred_sem_seg.data, theirs.pred_sem_seg.data
        if a.shape != b.shape:
            raise ValueError(f'label maps of {tuple(a.shape)} (PyTorch) and '
                             f'{tuple(b.shape)} (ONNX Runtime)')
        same += (a == b).sum().item()
        total += a.numel()
    return dict(pixels=same / total, pixel_count=total)


def compare_classification(torch_samples: Sequence[BaseDataElement],
                           onnx_samples: Sequence[BaseDataElement]) -> dict:
    """Top-1 and top-5 agreement and the largest probability difference."""
    top1 = top5 = 0
    diff = 0.0
    for ours, theirs in zip(torch_samples, onnx_samples):
        a, b = ours.pred_score.float(), theirs.pred_score.float()
        top1 += int(a.argmax() == b.argmax())
        k = min(5, a.numel())
        top5 += int(set(a.topk(k).indices.tolist()) == set(
            b.topk(k).indices.tolist()))
        diff = max(diff, (a - b).abs().max().item())
    count = len(torch_samples)
    return dict(top1=top1 / count, top5=top5 / count, max_prob_diff=diff,
                images=count)


COMPARE = {
    'detection': compare_detections,
    'yolo': compare_detections,
    'segmentation': compare_segmentation,
    'classification': compare_classification,
}


def failures(task: str, agreement: dict) -> List[str]:
    """What in ``agreement`` is beyond :data:`TOLERANCES` (nothing: [])."""
    if agreement.get('boxes_pytorch') == 0:
        found = ('only inverted boxes, which are not compared' if
                 agreement.get('inverted_pytorch') else 'none')
        return [f'no boxes to compare: the PyTorch student found {found} on '
                'these images; give images it finds objects in (--image), or '
                'lower its score threshold (--cfg-options '
                'model.test_cfg.score_thr=0.0, or the config\'s own key)']
    found = []
    for key, bound in TOLERANCES[task].items():
        value = agreement[key]
        worse = value > bound if key.startswith('max_') else value < bound
        if worse:
            sign = '<=' if key.startswith('max_') else '>='
            found.append(f'{key} = {value:.6g} (expected {sign} {bound:g})')
    if found and 'max_score_diff' in agreement and \
            agreement['max_score_diff'] <= TOLERANCES[task]['max_score_diff']:
        # Scores agree but the kept boxes do not: NMS among near-ties.
        found.append('the matched scores agree: where many boxes score '
                     'within float rounding of each other (a barely trained '
                     'detector), NMS keeps either; check it with '
                     '--cfg-options model.test_cfg.nms.iou_threshold=1.0 '
                     '(model.architecture.test_cfg... for a distillation '
                     'config), or check a trained checkpoint')
    return found
