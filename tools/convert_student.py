"""Extract the student of a distillation checkpoint into a plain checkpoint.

    python tools/convert_student.py \
        work_dirs/dist_retinanet_r50_coco/epoch_24.pth \
        retinanet_r50_dist.pth

The output holds the student's tensors and plain metadata only, so the stock
student config evaluates it with mmdet's or mmseg's own test tool, which
loads with torch.load(weights_only=True) and never imports mmdist.
"""
import argparse

from mmdist.apis import convert_student


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('checkpoint', help='distillation checkpoint')
    parser.add_argument('out', help='where to write the student checkpoint')
    parser.add_argument(
        '--prefix', default='architecture.',
        help="the student's key prefix in the algorithm (MMRazor: "
        "'architecture.')")
    args = parser.parse_args()
    count = convert_student(args.checkpoint, args.out, args.prefix)
    print(f'wrote {count} student tensors to {args.out}')


if __name__ == '__main__':
    main()
