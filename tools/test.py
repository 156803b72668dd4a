"""Evaluate a checkpoint with MMEngine's Runner and the config's metrics.

    python tools/test.py configs/dist_retinanet_r50_coco.py \
        work_dirs/dist_retinanet_r50_coco/epoch_24.pth
    python tools/test.py configs/dist_retinanet_r50_coco.py --teacher
    python tools/test.py \
        configs/dist_deeplabv3_r18_two-teachers_cityscapes.py \
        --teacher segformer_b5
    python tools/test.py configs/dist_retinanet_r50_coco.py \
        --onnx deploy/retinanet/end2end.onnx

Takes a distillation checkpoint with its distillation config (the student is
evaluated) or a converted student with the stock student config. With
--teacher, the teacher of a distillation config is evaluated alone (of
several teachers, the one named), on the config's test data with the
metrics of the teacher's own config, from its checkpoint in the config
(model.teacher_ckpt) or the checkpoint given, its BatchNorm folded as the
distillation folds it (model.teacher_fold_bn): check a teacher before
distilling from it. With --onnx, the student exported by tools/deploy.py
is evaluated under ONNX Runtime (the deploy extra), with the deploy config
beside it.
"""
import argparse
import os.path as osp

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
        '--onnx', metavar='FILE',
        help='evaluate the student exported by tools/deploy.py '
        '(end2end.onnx) under ONNX Runtime instead of a checkpoint')
    parser.add_argument(
        '--deploy-cfg', help='with --onnx: the deploy config it was '
        'exported with (default: deploy_config.py beside it)')
    parser.add_argument(
        '--out', help='dump the predictions to this pickle file')
    add_runner_args(parser)
    args = parser.parse_args()
    given = [name for name, value in (
        ('a checkpoint', args.checkpoint), ('--teacher', args.teacher),
        ('--onnx', args.onnx)) if value is not None]
    if args.onnx is not None and len(given) > 1:
        parser.error(f'--onnx evaluates the exported student alone; drop '
                     f'{given[0] if given[0] != "--onnx" else given[1]}')
    if args.onnx is not None and args.launcher != 'none':
        parser.error('--onnx evaluates in one process: drop --launcher')
    if not given:
        parser.error('the checkpoint to evaluate is required (or --teacher '
                     'to evaluate the teacher of a distillation config, or '
                     '--onnx for an exported student)')
    return args


def test_onnx(cfg, args) -> dict:
    """The exported student under ONNX Runtime, on the config's test data
    with its metric."""
    from mmdist.apis.deploy import (check_deploy_installed,
                                    load_deploy_config, onnx_test_runner,
                                    student_config)
    from mmdist.apis.deploy.backend import task_of_deploy_config
    check_deploy_installed()
    if not osp.isfile(args.onnx):
        raise FileNotFoundError(f'ONNX file not found: {args.onnx} '
                                '(tools/deploy.py writes DIR/end2end.onnx)')
    deploy_cfg = args.deploy_cfg or osp.join(osp.dirname(args.onnx),
                                             'deploy_config.py')
    if not osp.isfile(deploy_cfg):
        raise FileNotFoundError(
            f'deploy config not found: {deploy_cfg}; give the one the model '
            'was exported with: --deploy-cfg FILE')
    deploy_cfg = load_deploy_config(None, deploy_cfg)
    student = student_config(cfg)
    check_data(student, ['test_dataloader'])
    with cleanup_on_failure(cfg.work_dir):
        runner = onnx_test_runner(student, deploy_cfg,
                                  task_of_deploy_config(deploy_cfg),
                                  args.onnx, cfg.work_dir)
    return runner.test()


def main() -> None:
    args = parse_args()
    cfg = load_config(args)
    if args.out:
        cfg.test_evaluator = [
            *evaluator_metrics(cfg.test_evaluator),
            dict(type='DumpResults', out_file_path=args.out)
        ]
    if args.onnx:
        metrics = test_onnx(cfg, args)
        print({k: round(float(v), 4) for k, v in metrics.items()})
        return
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
