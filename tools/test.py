"""Evaluate a checkpoint with MMEngine's Runner and the config's metrics.

    python tools/test.py configs/dist_retinanet_r50_coco.py \
        work_dirs/dist_retinanet_r50_coco/epoch_24.pth
    python tools/test.py configs/dist_retinanet_r50_coco.py --teacher
    python tools/test.py \
        configs/dist_deeplabv3_r18_two-teachers_cityscapes.py \
        --teacher segformer_b5

Takes a distillation checkpoint with its distillation config (the student is
evaluated) or a converted student with the stock student config. With
--teacher, the teacher of a distillation config is evaluated alone (of
several teachers, the one named), on the config's test data with the
metrics of the teacher's own config, from its checkpoint in the config
(model.teacher_ckpt) or the checkpoint given, its BatchNorm folded as the
distillation folds it (model.teacher_fold_bn): check a teacher before
distilling from it.
"""
import argparse

from mmengine.model import is_model_wrapper

from mmdist.apis import (add_runner_args, build_runner, check_data,
                         check_local_file, cpu_distributed, load_config,
                         teacher_test_config)
from mmdist.apis.runner import cleanup_on_failure, evaluator_metrics
from mmdist.models.algorithms.fold_bn import fold_model_batch_norm
from mmdist.models.algorithms.teacher_utils import load_teacher_checkpoint


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config', help='config file path')
    parser.add_argument(
        'checkpoint', nargs='?',
        help='checkpoint file (with --teacher: the teacher\'s, by default '
        'model.teacher_ckpt)')
    parser.add_argument(
        '--teacher', nargs='?', const='', metavar='NAME',
        help='evaluate the teacher of a distillation config alone (of '
        'several teachers, the one named)')
    parser.add_argument(
        '--out', help='dump the predictions to this pickle file')
    add_runner_args(parser)
    args = parser.parse_args()
    if args.checkpoint is None and args.teacher is None:
        parser.error('the checkpoint to evaluate is required (or --teacher '
                     'to evaluate the teacher of a distillation config)')
    return args


def main() -> None:
    args = parse_args()
    cfg = load_config(args)
    teacher_ckpt = None
    if args.teacher is not None:
        # The teacher as the distillation runs it: folded unless said.
        fold_bn = cfg.model.get('teacher_fold_bn', True)
        cfg, teacher_ckpt = teacher_test_config(cfg, args.checkpoint,
                                                args.teacher or None)
        check_local_file(teacher_ckpt, 'teacher checkpoint',
                         'model.teacher_ckpt')
    else:
        check_local_file(args.checkpoint, 'checkpoint', 'load_from')
        cfg.load_from = args.checkpoint
        # Weights come from the checkpoint: the teachers' are not needed.
        if 'teacher_ckpt' in cfg.model:
            cfg.model.teacher_ckpt = None
        for teacher in (cfg.model.get('teachers') or {}).values():
            teacher.ckpt = None
    if args.out:
        cfg.test_evaluator = [
            *evaluator_metrics(cfg.test_evaluator),
            dict(type='DumpResults', out_file_path=args.out)
        ]
    check_data(cfg, ['test_dataloader'])
    with cpu_distributed(cfg, args.launcher):
        with cleanup_on_failure(cfg.work_dir):
            runner = build_runner(cfg)
            if teacher_ckpt:
                model = runner.model.module if is_model_wrapper(
                    runner.model) else runner.model
                load_teacher_checkpoint(model, teacher_ckpt)
                if fold_bn:
                    model.eval()
                    fold_model_batch_norm(model)
        metrics = runner.test()
    print({k: round(float(v), 4) for k, v in metrics.items()})


if __name__ == '__main__':
    main()
