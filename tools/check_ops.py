"""Check that a model runs on this install before a long job: which mmcv
ops it calls, where each comes from, and which are missing.

    python tools/check_ops.py configs/dist_retinanet_r50_coco.py
    python tools/check_ops.py mmdet::dyhead/atss_r50_fpn_dyhead_1x_coco.py
    python tools/check_ops.py my_config.py --device cpu --size 512 512

Each config's model (a distillation config's teacher and student, or any
mmdet, mmseg or mmpretrain model) is built with random weights, nothing
downloaded, and takes one prediction and one training step on generated
inputs of its task, on the CPU and on CUDA where there is one. Exits with
1 when a model failed or called an op that neither the compiled mmcv nor
mmdist provides.
"""
import argparse
import json
import sys

from mmengine.config import Config, DictAction

import mmdist  # noqa: F401  stand-in ops, compat fixes, registries
from mmdist.apis.check_ops import available_devices, check_ops


def load(path: str) -> Config:
    """A config file, or a stock one named ``'mmdet::<dir>/<file>.py'``."""
    if '::' in path:
        from mmengine.hub import get_config
        return get_config(path)
    return Config.fromfile(path)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('configs', nargs='+', metavar='config',
                        help="config files, or stock configs as "
                        "'mmdet::<dir>/<file>.py', 'mmseg::...', "
                        "'mmpretrain::...'")
    parser.add_argument(
        '--device', nargs='+', choices=['cpu', 'cuda'],
        help='devices to run on (default: cpu, and cuda where there is one)')
    parser.add_argument(
        '--size', nargs=2, type=int, metavar=('HEIGHT', 'WIDTH'),
        help='input size (default 256 x 256; 224 x 224 for classification)')
    parser.add_argument('--batch-size', type=int, default=2)
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction,
        help='override config settings, key=value (xxx=yyy format)')
    parser.add_argument('--out', help='also write the reports to this '
                        'JSON file')
    parser.add_argument('--verbose', action='store_true',
                        help='print the traceback of each failure')
    args = parser.parse_args()
    if args.device and 'cuda' in args.device:
        import torch
        if not torch.cuda.is_available():
            parser.error('--device cuda: this machine has no CUDA device')
    return args


def main() -> int:
    args = parse_args()
    devices = args.device or available_devices()
    reports = []
    for path in args.configs:
        cfg = load(path)
        if args.cfg_options:
            cfg.merge_from_dict(args.cfg_options)
        report = check_ops(cfg, name=path, devices=devices,
                           size=args.size and tuple(args.size),
                           batch_size=args.batch_size, verbose=args.verbose)
        print(report.format(), end='\n\n', flush=True)
        reports.append(report)
    if args.out:
        with open(args.out, 'w') as f:
            json.dump([r.to_dict() for r in reports], f, indent=1)
    return 0 if all(r.ok for r in reports) else 1


if __name__ == '__main__':
    sys.exit(main())
