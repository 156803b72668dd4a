"""Train with MMEngine's Runner: a distilled student, or any OpenMMLab model.

    python tools/train.py configs/dist_retinanet_r50_coco.py
    bash tools/dist_train.sh configs/dist_retinanet_r50_coco.py 8

The flags are those of mmdet's and mmseg's train tools. The data, the
teacher checkpoint and the teacher itself are checked before training
starts; a run that fails to start leaves nothing in its work_dir. Every
sample loads under a seed of its own and an iteration-based run resumes by
moving the sampler, exactly and in seconds (mmdist.apis.make_resumable;
--cfg-options resume_mode=replay keeps MMEngine's replay).
"""
import argparse

from mmengine.device import get_device

from mmdist.apis import (add_runner_args, build_runner, check_data,
                         check_load_from, check_local_file, cpu_distributed,
                         load_config, make_resumable)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config', help='train config file path')
    parser.add_argument(
        '--resume', nargs='?', type=str, const='auto',
        help='resume from this checkpoint, or, without a path, from the '
        'latest checkpoint in work_dir')
    parser.add_argument(
        '--amp', action='store_true', help='automatic mixed precision')
    parser.add_argument(
        '--auto-scale-lr', action='store_true',
        help='scale the lr by the actual batch size (auto_scale_lr)')
    add_runner_args(parser)
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    cfg = load_config(args)
    if args.amp:
        if get_device() == 'cpu':
            raise ValueError('--amp needs an accelerator: MMEngine\'s '
                             'AmpOptimWrapper runs on GPU, NPU, MLU or MUSA, '
                             'and this machine has none; drop --amp')
        cfg.optim_wrapper.type = 'AmpOptimWrapper'
        cfg.optim_wrapper.loss_scale = 'dynamic'
    if args.auto_scale_lr:
        if 'base_batch_size' not in cfg.get('auto_scale_lr', {}):
            raise ValueError('--auto-scale-lr needs auto_scale_lr = dict('
                             'base_batch_size=...) in the config')
        cfg.auto_scale_lr.enable = True
    if args.resume == 'auto':
        cfg.resume, cfg.load_from = True, None
    elif args.resume is not None:
        check_local_file(args.resume, 'checkpoint to resume from',
                         'load_from')
        cfg.resume, cfg.load_from = True, args.resume

    loaders = ['train_dataloader']
    # mmpretrain's configs enable validation with val_cfg = dict().
    if cfg.get('val_cfg') is not None:
        loaders.append('val_dataloader')
    check_data(cfg, loaders)
    check_local_file(cfg.model.get('teacher_ckpt'), 'teacher checkpoint',
                     'model.teacher_ckpt')
    for name, teacher in (cfg.model.get('teachers') or {}).items():
        check_local_file(teacher.get('ckpt'), f'checkpoint of teacher {name}',
                         f'model.teachers.{name}.ckpt')
    check_local_file(cfg.model.get('student_ckpt'), 'student checkpoint',
                     'model.student_ckpt')
    check_load_from(cfg)
    make_resumable(cfg)
    with cpu_distributed(cfg, args.launcher):
        build_runner(cfg).train()


if __name__ == '__main__':
    main()
