"""The embedded demos: distillation on this machine, nothing downloaded.

    python tools/demo.py                          # or: make demo
    python tools/demo.py --task classification
    python tools/demo.py --task detection
    python tools/demo.py --task yolo
    python tools/demo.py --task detection --seed 0 1 2   # mean and range

Generates a small data set in a real layout (Cityscapes, ImageNet or COCO),
trains a teacher on it (DeepLabV3 R101-D8, ResNet-34, RetinaNet R34 or
mmyolo's RTMDet-s), then a student (R18-D8, ResNet-18, RetinaNet R18 or
RTMDet-tiny) alone, with KD and with DIST (for YOLO: with mmyolo's CWD,
with DIST, and with both), each model's latency, and ends with a table and
curves under work_dirs/demo/ (work_dirs/demo_<task>/ for the others).
"""
import argparse

from mmdist.apis.demo import TASKS, run_demo, run_demo_seeds


def _defaults(key: str) -> str:
    return ', '.join(f'{task.defaults[key]} ({name})'
                     for name, task in sorted(TASKS.items()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--task', choices=sorted(TASKS),
                        default='segmentation',
                        help='segmentation (DeepLabV3, mIoU), classification '
                        '(ResNet, top-1), detection (RetinaNet, COCO bbox '
                        'mAP) or yolo (mmyolo\'s RTMDet, COCO bbox mAP); '
                        'default: segmentation')
    parser.add_argument('--work-dir', help='default: ' + ', '.join(
        f'{task.work_dir} ({name})' for name, task in sorted(TASKS.items())))
    parser.add_argument('--teacher-iters', type=int,
                        help='default: ' + _defaults('teacher_iters'))
    parser.add_argument('--iters', type=int,
                        help='iterations of each student run; default: ' +
                        _defaults('iters'))
    parser.add_argument('--num-train', type=int,
                        help='training images (per class for '
                        'classification); default: ' + _defaults('num_train'))
    parser.add_argument('--num-val', type=int,
                        help='validation images (per class for '
                        'classification); default: ' + _defaults('num_val'))
    parser.add_argument('--seed', type=int, nargs='+', default=[0],
                        help='the data\'s and every run\'s seed; several '
                        'run the demo once each, in <work-dir>/seed<k>/, '
                        'and add a table of the mean and range over them '
                        '(results_seeds.md); default: 0')
    parser.add_argument('--latency-repeat', type=int, default=50,
                        help='runs each model\'s latency is the median of '
                        '(default 50)')
    args = parser.parse_args()
    sizes = dict(teacher_iters=args.teacher_iters, student_iters=args.iters,
                 num_train=args.num_train, num_val=args.num_val,
                 latency_repeat=args.latency_repeat)
    if len(args.seed) == 1:
        run_demo(args.task, args.work_dir, seed=args.seed[0], **sizes)
    elif len(set(args.seed)) != len(args.seed):
        parser.error(f'--seed: give each seed once; got {args.seed}')
    else:
        run_demo_seeds(args.task, args.work_dir, args.seed, **sizes)


if __name__ == '__main__':
    main()
