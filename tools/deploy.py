"""Export the student to ONNX through mmdeploy and check it under ONNX
Runtime against PyTorch.

    python tools/deploy.py configs/dist_retinanet_r50_coco.py \
        work_dirs/dist_retinanet_r50_coco/epoch_24.pth --out deploy/retinanet
    python tools/deploy.py STOCK_STUDENT_CONFIG student.pth --out DIR \
        --image demo.jpg --benchmark

Takes a distillation config with its checkpoint (the student is taken out)
or a stock config with a student checkpoint. Writes DIR/end2end.onnx, the
student's checkpoint (student.pth), its config (model_config.py), the
deploy config used (deploy_config.py) and a report (report.md,
report.json), after running the exported model and the PyTorch student on
the same images (--image, or generated ones) and comparing their
predictions. Exits with 1 where they disagree beyond the tolerances of
docs/deploy.md, with 2 on bad input or a failed export (nothing written).
Needs the deploy extra: make install DEPLOY=1.
"""
import argparse
import sys

from mmengine.config import DictAction

from mmdist.apis.deploy import DeployError, deploy_student, summary


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config', help='distillation config, or the '
                        "student's stock config")
    parser.add_argument('checkpoint', help='distillation checkpoint, or '
                        "a checkpoint of the student's config")
    parser.add_argument('--out', required=True,
                        help='folder for end2end.onnx and the rest')
    parser.add_argument('--image', nargs='+', default=[], metavar='FILE',
                        help='images to check on (default: generated '
                        "ones, in the test pipeline's size)")
    parser.add_argument('--num-images', type=int, default=2,
                        help='how many images to generate (default 2)')
    parser.add_argument('--deploy-cfg', help="an mmdeploy deploy config "
                        "(default: mmdist's for the student's task, "
                        'configs/deploy/)')
    parser.add_argument('--benchmark', action='store_true',
                        help='time the student under ONNX Runtime and '
                        'PyTorch, and the teachers under PyTorch')
    parser.add_argument('--repeat', type=int, default=10,
                        help='runs a latency is the median of (default 10)')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction,
        help='override config settings, key=value (the student of a '
        'distillation config is model.architecture)')
    parser.add_argument('--threads', type=int,
                        help='threads of torch and ONNX Runtime (default: '
                        "torch's)")
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    try:
        report = deploy_student(
            args.config, args.checkpoint, args.out, args.image,
            args.deploy_cfg, args.num_images, args.benchmark, args.repeat,
            args.threads, options=args.cfg_options)
    except DeployError as exc:
        print(f'tools/deploy.py: {exc}', file=sys.stderr)
        return 2
    print(summary(report))
    print(f'\nwritten: {args.out}/ (end2end.onnx, student.pth, '
          'model_config.py, deploy_config.py, report.md, report.json)')
    return 0 if report['passed'] else 1


if __name__ == '__main__':
    sys.exit(main())
