"""What each demo trains, on which generated data, and what it reports."""
import os.path as osp
from dataclasses import dataclass
from typing import Callable, Dict, Tuple

REPO = osp.dirname(osp.dirname(osp.dirname(osp.dirname(
    osp.abspath(__file__)))))


def _make_cityscapes(root: str, num_train: int, num_val: int,
                     seed: int) -> None:
    from mmdist.datasets import make_cityscapes
    make_cityscapes(root, num_train=num_train, num_val=num_val,
                    image_size=(64, 128), seed=seed)


def _make_coco(root: str, num_train: int, num_val: int, seed: int) -> None:
    from mmdist.datasets import make_coco
    make_coco(root, num_train=num_train, num_val=num_val,
              image_size=(64, 64), max_shapes=3, seed=seed,
              shape_classes=True, radius=(0.12, 0.25))


def _make_imagenet(root: str, num_train: int, num_val: int,
                   seed: int) -> None:
    from mmdist.datasets import make_imagenet
    make_imagenet(root, num_train=num_train, num_val=num_val,
                  image_size=(32, 32), seed=seed)


@dataclass(frozen=True)
class DemoTask:
    """What one demo trains, on which data, and what it reports.

    Attributes:
        configs: Config file names under configs/demo/, in the order
            teacher, student alone, then the distilled students.
        names: The runs' names in the table.
        metric: The logged validation metric that the curves follow.
        columns: (logged key, table header) of the table's metrics.
        task_loss: The student's logged task loss (the distilled runs
            prefix it with 'student.').
        data: The data set's folder under the work dir, and its writer
            ``(root, num_train, num_val, seed)``.
        data_text: How the data set is described (``{train}``/``{val}``
            are the counts).
        metric_text: What the table reports.
        defaults: teacher_iters, iters, num_train and num_val.
        work_dir: Where the demo writes by default.
        scale: What the logged metrics are multiplied by to be shown in %
            (100 for a metric logged as a fraction, as COCO's mAP).
        data_options: --cfg-options that name files of the generated data
            beside the data roots (``{data_root}`` is its folder), as the
            annotation file of COCO's evaluator.
        dirs: Each run's folder under the work dir, in the order of
            ``configs``.
    """
    title: str
    configs: Tuple[str, ...]
    names: Tuple[str, ...]
    metric: str
    columns: Tuple[Tuple[str, str], ...]
    task_loss: str
    loss_title: str
    data: Tuple[str, Callable[[str, int, int, int], None]]
    data_text: str
    metric_text: str
    defaults: Dict[str, int]
    work_dir: str
    scale: float = 1.0
    data_options: Tuple[str, ...] = ()
    dirs: Tuple[str, ...] = ('teacher', 'student', 'kd', 'dist')


TASKS: Dict[str, DemoTask] = {
    'segmentation': DemoTask(
        title='DeepLabV3 R101-D8 -> R18-D8',
        configs=('deeplabv3_r101_toy_teacher.py', 'deeplabv3_r18_toy.py',
                 'kd_deeplabv3_r18_toy.py', 'dist_deeplabv3_r18_toy.py'),
        names=('teacher (R101-D8)', 'student alone (R18-D8)',
               'student + KD', 'student + DIST'),
        metric='mIoU',
        columns=(('mIoU', 'mIoU'), ('mAcc', 'mAcc'), ('aAcc', 'aAcc')),
        task_loss='decode.loss_ce',
        loss_title='decode-head cross-entropy (train)',
        data=('data/cityscapes', _make_cityscapes),
        data_text='synthetic Cityscapes-layout data ({train} train / {val} '
        'val images, 64 x 128)',
        metric_text='mIoU (%) on the val split',
        defaults=dict(teacher_iters=150, iters=100, num_train=60,
                      num_val=20),
        work_dir='work_dirs/demo'),
    'classification': DemoTask(
        title='ResNet-34 -> ResNet-18',
        configs=('resnet34_toy_teacher.py', 'resnet18_toy.py',
                 'kd_resnet18_toy.py', 'dist_resnet18_toy.py'),
        names=('teacher (ResNet-34)', 'student alone (ResNet-18)',
               'student + KD', 'student + DIST'),
        metric='accuracy/top1',
        columns=(('accuracy/top1', 'top-1'), ),
        task_loss='loss',
        loss_title='classification cross-entropy (train)',
        data=('data/imagenet', _make_imagenet),
        data_text='synthetic ImageNet-layout data (24 classes, {train} train '
        '/ {val} val images per class, 32 x 32)',
        metric_text='top-1 (%) on the val split',
        defaults=dict(teacher_iters=300, iters=200, num_train=100,
                      num_val=20),
        work_dir='work_dirs/demo_classification'),
    'detection': DemoTask(
        title='RetinaNet R34 -> R18',
        configs=('retinanet_r34_toy_teacher.py', 'retinanet_r18_toy.py',
                 'kd_retinanet_r18_toy.py', 'dist_retinanet_r18_toy.py'),
        names=('teacher (RetinaNet R34)', 'student alone (RetinaNet R18)',
               'student + KD', 'student + DIST'),
        metric='coco/bbox_mAP',
        columns=(('coco/bbox_mAP', 'bbox mAP'),
                 ('coco/bbox_mAP_50', 'mAP_50'),
                 ('coco/bbox_mAP_75', 'mAP_75')),
        task_loss='loss_cls',
        loss_title='focal loss of the classification head (train)',
        data=('data/coco', _make_coco),
        data_text='synthetic COCO-layout data (3 shape classes, {train} '
        'train / {val} val images, 64 x 64)',
        metric_text="COCO's bbox mAP (%) on the val split",
        defaults=dict(teacher_iters=400, iters=250, num_train=400,
                      num_val=100),
        work_dir='work_dirs/demo_detection',
        scale=100,
        data_options=tuple(
            f'{split}_evaluator.ann_file={{data_root}}/annotations/'
            'instances_val2017.json' for split in ('val', 'test'))),
    'yolo': DemoTask(
        title="RTMDet-s -> RTMDet-tiny (mmyolo)",
        configs=('rtmdet_s_toy_teacher.py', 'rtmdet_tiny_toy.py',
                 'kd_cwd_rtmdet_tiny_toy.py', 'dist_rtmdet_tiny_toy.py',
                 'dist_cwd_rtmdet_tiny_toy.py'),
        names=('teacher (RTMDet-s)', 'student alone (RTMDet-tiny)',
               "student + mmyolo's CWD", 'student + DIST',
               'student + DIST + CWD'),
        dirs=('teacher', 'student', 'kd_cwd', 'dist', 'dist_cwd'),
        metric='coco/bbox_mAP',
        columns=(('coco/bbox_mAP', 'bbox mAP'),
                 ('coco/bbox_mAP_50', 'mAP_50'),
                 ('coco/bbox_mAP_75', 'mAP_75')),
        task_loss='loss_cls',
        loss_title='quality focal loss of the classification head (train)',
        data=('data/coco', _make_coco),
        data_text='synthetic COCO-layout data (3 shape classes, {train} '
        'train / {val} val images, 64 x 64)',
        metric_text="COCO's bbox mAP (%) on the val split",
        defaults=dict(teacher_iters=800, iters=250, num_train=400,
                      num_val=100),
        work_dir='work_dirs/demo_yolo',
        scale=100,
        data_options=tuple(
            f'{split}_evaluator.ann_file={{data_root}}/annotations/'
            'instances_val2017.json' for split in ('val', 'test'))),
}
