"""The paper's four settings as buildable models with generated batches,
for the benchmarks and the tests (random weights, nothing downloaded)."""
import copy
import os.path as osp
from typing import Dict, Iterator, List, NamedTuple, Optional, Tuple

from mmengine.config import Config
from mmengine.registry import init_default_scope
from torch import nn

from mmdist.apis.check_ops import (generated_batch, predict_step,
                                   record_mmcv_ops, train_step)
from mmdist.models.algorithms.frozen_teacher_distill import \
    typeless_preprocessor_to_student
from mmdist.registry import MODELS

__all__ = ['IMAGENET', 'RTMDET', 'SETTINGS', 'Setting', 'build_setting',
           'make_batch', 'record_mmcv_ops', 'setting_config',
           'train_and_predict']

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))


class Setting(NamedTuple):
    """One of the paper's teacher -> student pairs.

    Attributes:
        name: Short name.
        config: The distillation config, relative to the repository.
        task: ``'det'`` (mmdet), ``'seg'`` (mmseg), ``'cls'``
            (mmpretrain) or ``'yolo'`` (mmyolo).
        image_size: The stock training input ``(height, width)``.
        stock_algorithm: Whether MMRazor's ``SingleTeacherDistill`` computes
            the same losses (it does not for two-stage detectors: its
            teacher would classify its own RoIs, not the student's).
        kd_config: The same pair's distillation as its package ships it
            (mmyolo's CWD on the neck), if any: the ``'kd'`` variant.
    """
    name: str
    config: str
    task: str
    image_size: Tuple[int, int]
    stock_algorithm: bool
    kd_config: Optional[str] = None


SETTINGS = (
    Setting('retinanet', 'configs/dist_retinanet_r50_coco.py', 'det',
            (800, 1333), True),
    Setting('faster_rcnn', 'configs/dist_faster_rcnn_r50_coco.py', 'det',
            (800, 1333), False),
    Setting('deeplabv3', 'configs/dist_deeplabv3_r18_cityscapes.py', 'seg',
            (512, 1024), True),
    Setting('pspnet', 'configs/dist_pspnet_r18_cityscapes.py', 'seg',
            (512, 1024), True),
)
#: ImageNet ResNet-34 -> ResNet-18, the paper's classification baseline
#: (beside the four settings in the benchmarks).
IMAGENET = Setting('resnet18_in1k', 'configs/dist_resnet18_in1k.py', 'cls',
                   (224, 224), True)
#: Two RetinaNet teachers (X101-64x4d and R101) -> R50, beyond the paper:
#: what a second teacher adds to the RetinaNet setting's step.
TWO_TEACHERS = Setting('retinanet_two_teachers',
                       'configs/dist_retinanet_r50_two-teachers_coco.py',
                       'det', (800, 1333), False)
#: RTMDet-m -> RTMDet-s (mmyolo, 640 x 640), beside mmyolo's own KD of the
#: pair (CWD on the neck's three outputs).
RTMDET = Setting('rtmdet_s_m', 'configs/yolo/dist_rtmdet-s_rtmdet-m_coco.py',
                 'yolo', (640, 640), True,
                 'mmyolo::rtmdet/distillation/kd_s_rtmdet_m_neck_300e_coco.py')

#: What :func:`build_setting` builds: the student alone, MMRazor's stock
#: algorithm, mmdist's (as configured) or the setting's ``kd_config``.
VARIANTS = ('student', 'mmrazor', 'mmdist', 'kd')
_SCOPES = dict(det='mmdet', seg='mmseg', cls='mmpretrain', yolo='mmyolo')
_TASKS = dict(det='detection', seg='segmentation', cls='classification',
              yolo='detection')


def setting_config(setting: Setting, kd: bool = False) -> Config:
    """The setting's config (its ``kd_config`` with ``kd``) with random
    weights: no download, no teacher checkpoint, and the top-level data
    preprocessor on the model (as the Runner hands it over)."""
    if kd and setting.kd_config is None:
        raise ValueError(f'the {setting.name} setting has no kd_config')
    if kd:
        from mmengine.hub import get_config
        cfg = get_config(setting.kd_config, pretrained=False)
    else:
        cfg = Config.fromfile(osp.join(REPO, setting.config))
    model = cfg.model
    model.teacher_ckpt = None
    for spec in (model.get('teachers') or {}).values():
        spec.ckpt = None
    student = model.architecture
    student.pop('pretrained', None)
    if 'backbone' in student:  # not where it is a cfg_path
        student.backbone.pop('init_cfg', None)
    if cfg.get('data_preprocessor') is not None:
        model.setdefault('data_preprocessor', cfg.data_preprocessor)
    # mmpretrain's is typeless: the student's (MMRazor's algorithm too).
    typeless_preprocessor_to_student(model)
    return cfg


def distill_loss_configs(distiller: dict) -> List[dict]:
    """The loss configs of a distiller config: its ``distill_losses`` and
    the loss of each ``logits`` entry (a LogitDistiller)."""
    losses = list((distiller.get('distill_losses') or {}).values())
    return losses + [spec['loss']
                     for spec in (distiller.get('logits') or {}).values()]


def build_setting(setting: Setting, variant: str = 'mmdist',
                  teacher_precision: Optional[str] = None,
                  image_size: Optional[Tuple[int, int]] = None,
                  **options) -> nn.Module:
    """Build one variant of a setting with random weights.

    Args:
        setting: One of :data:`SETTINGS` (or :data:`IMAGENET`).
        variant: One of :data:`VARIANTS`.
        teacher_precision: mmdist's ``teacher_precision`` option.
        image_size: The input size when it is not the stock one (the
            segmentation preprocessor pads to it).
        **options: More options of mmdist's algorithm (``teacher_ckpt``,
            ``teacher_fold_bn``, ``teacher_compile``, ...).

    Returns:
        The model in training mode, on the CPU.
    """
    if variant not in VARIANTS:
        raise ValueError(f'variant={variant!r}; expected one of {VARIANTS}')
    cfg = setting_config(setting, kd=variant == 'kd')
    model_cfg = copy.deepcopy(cfg.model)
    if setting.task == 'seg' and image_size is not None:
        for pre in (model_cfg.data_preprocessor,
                    model_cfg.architecture.data_preprocessor):
            pre.size = tuple(image_size)
    if variant == 'student':
        init_default_scope(_SCOPES[setting.task])
        model = MODELS.build(model_cfg.architecture)
    else:
        if variant == 'mmrazor':
            if not setting.stock_algorithm:
                raise ValueError(
                    f"MMRazor's SingleTeacherDistill does not distil the "
                    f'{setting.name} setting (its teacher would classify '
                    'its own RoIs)')
            model_cfg.type = 'SingleTeacherDistill'
            for loss in distill_loss_configs(model_cfg.distiller):
                loss.pop('log_terms', None)  # it logs tensors only
        elif variant == 'mmdist':
            model_cfg.update(options)
            if teacher_precision is not None:
                model_cfg.teacher_precision = teacher_precision
        init_default_scope('mmrazor')
        model = MODELS.build(model_cfg)
    model.train()  # MMRazor's train() returns None
    return model


def make_batch(setting: Setting, batch_size: int = 2,
               image_size: Optional[Tuple[int, int]] = None,
               seed: int = 0) -> Dict:
    """A generated batch of the setting's task as a dataloader yields it
    (:func:`mmdist.apis.check_ops.generated_batch`): 5 boxes an image over
    80 classes, labels of 19 classes with a band of 255, or one of 1000
    classes an image; mmyolo's as ``yolov5_collate`` gives them (one
    tensor of images, one table of boxes)."""
    classes = dict(det=80, seg=19, cls=1000, yolo=80)[setting.task]
    batch = generated_batch(_TASKS[setting.task], batch_size,
                            image_size or setting.image_size, classes, seed,
                            boxes=5)
    if setting.task == 'yolo':
        # mmyolo's loaders collate into one tensor and one box table, from
        # the box type its pipelines give.
        from mmdet.structures.bbox import HorizontalBoxes
        from mmyolo.datasets import yolov5_collate
        for sample in batch['data_samples']:
            boxes = sample.gt_instances.bboxes
            sample.gt_instances.bboxes = HorizontalBoxes(boxes)
        batch = yolov5_collate([
            dict(inputs=image, data_samples=sample) for image, sample in
            zip(batch['inputs'], batch['data_samples'])])
    return batch


def train_and_predict(model: nn.Module, data: Dict[str, List]) -> Dict:
    """One training step (SGD) and one prediction on ``data``; returns the
    losses. Detectors keep every score (``score_thr=0``), so that their
    post-processing (NMS) runs even with random weights."""
    student = getattr(model, 'student', model)
    for cfg in _test_cfgs(student):
        cfg.score_thr = 0.0
    losses = train_step(model, data)
    predict_step(model, data)
    return losses


def _test_cfgs(detector: nn.Module) -> Iterator:
    for head in ('bbox_head', 'roi_head'):
        cfg = getattr(getattr(detector, head, None), 'test_cfg', None)
        if cfg is not None and 'score_thr' in cfg:
            yield cfg
