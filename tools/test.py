"""Evaluate a checkpoint with MMEngine's Runner and the config's metrics.

    python tools/test.py configs/dist_retinanet_r50_coco.py \
        work_dirs/dist_retinanet_r50_coco/epoch_24.pth

Takes a distillation checkpoint with its distillation config (the student is
evaluated) or a converted student with the stock student config.
"""
import argparse

from mmdist.apis import (add_runner_args, build_runner, check_data,
                         check_local_file, cpu_distributed, load_config)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config', help='config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument(
        '--out', help='dump the predictions to this pickle file')
    add_runner_args(parser)
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    cfg = load_config(args)
    check_local_file(args.checkpoint, 'checkpoint', 'load_from')
    cfg.load_from = args.checkpoint
    # Weights come from the checkpoint: the teacher's are not needed.
    if 'teacher_ckpt' in cfg.model:
        cfg.model.teacher_ckpt = None
    if args.out:
        cfg.test_evaluator = [
            *(cfg.test_evaluator if isinstance(cfg.test_evaluator, list) else
              [cfg.test_evaluator]),
            dict(type='DumpResults', out_file_path=args.out)
        ]
    check_data(cfg, ['test_dataloader'])
    with cpu_distributed(cfg, args.launcher):
        metrics = build_runner(cfg).test()
    print({k: round(float(v), 4) for k, v in metrics.items()})


if __name__ == '__main__':
    main()
