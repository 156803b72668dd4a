"""The embedded demo: distillation on this machine, nothing downloaded.

    python tools/demo.py            # or: make demo

Generates a small Cityscapes-layout data set, trains a DeepLabV3 R101-D8
teacher on it, then a DeepLabV3 R18-D8 student alone, with KD and with DIST
(configs/demo/), and ends with a table and curves under work_dirs/demo/.
"""
import argparse

from mmdist.apis.demo import run_demo


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--work-dir', default='work_dirs/demo')
    parser.add_argument('--teacher-iters', type=int, default=150)
    parser.add_argument('--iters', type=int, default=100,
                        help='iterations of each student run')
    parser.add_argument('--num-train', type=int, default=60)
    parser.add_argument('--num-val', type=int, default=20)
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args()
    run_demo(args.work_dir, args.teacher_iters, args.iters, args.num_train,
             args.num_val, args.seed)


if __name__ == '__main__':
    main()
