"""Train-step time: mmdist's FrozenTeacherDistill against MMRazor's stock
SingleTeacherDistill, with the same student, teacher, losses and inputs.

Both are built from configs/dist_retinanet_r50_coco.py (R50 student,
X101-64x4d teacher, DIST on every FPN level), randomly initialised; each
step is forward, backward and an SGD update on one batch.

Run: python benchmarks/bench_train_step.py [--size 320] [--batch 2]
     [--repeat 3] [--config configs/dist_retinanet_r50_coco.py]
"""
import argparse
import copy
import statistics
import time

import torch
from mmengine.config import Config
from mmengine.optim import OptimWrapper
from mmengine.registry import init_default_scope

import mmdist  # noqa: F401
from mmdist.registry import MODELS
from mmdist.testing import distill_loss_configs


def build(cfg: Config, algorithm: str) -> torch.nn.Module:
    model_cfg = copy.deepcopy(cfg.model)
    model_cfg.type = algorithm
    model_cfg.teacher_ckpt = None
    model_cfg.architecture.backbone.init_cfg = None
    for loss in distill_loss_configs(model_cfg.distiller):
        loss.pop('log_terms', None)  # MMRazor's algorithm logs tensors only
    init_default_scope('mmrazor')
    return MODELS.build(model_cfg)


def make_batch(size: int, batch: int) -> dict:
    from mmdet.testing import demo_mm_inputs
    return demo_mm_inputs(batch_size=batch, image_shapes=(3, size, size),
                          num_items=[5] * batch, num_classes=80)


def time_steps(model, data, repeat: int, device: str) -> list:
    model.to(device).train()
    optim = OptimWrapper(
        torch.optim.SGD([p for p in model.parameters() if p.requires_grad],
                        lr=1e-4))
    model.train_step(copy.deepcopy(data), optim)  # warm-up
    times = []
    for _ in range(repeat):
        if device == 'cuda':
            torch.cuda.synchronize()
        start = time.perf_counter()
        model.train_step(copy.deepcopy(data), optim)
        if device == 'cuda':
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        '--config', default='configs/dist_retinanet_r50_coco.py')
    parser.add_argument('--size', type=int, default=320)
    parser.add_argument('--batch', type=int, default=2)
    parser.add_argument('--repeat', type=int, default=3)
    parser.add_argument(
        '--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    args = parser.parse_args()

    cfg = Config.fromfile(args.config)
    torch.manual_seed(0)
    ours = build(cfg, 'mmdist.FrozenTeacherDistill')
    stock = build(cfg, 'SingleTeacherDistill')
    stock.load_state_dict(ours.state_dict())
    data = make_batch(args.size, args.batch)

    print(f'{args.config}: {args.batch} x {args.size}x{args.size} images, '
          f'device {args.device}, threads {torch.get_num_threads()}, '
          f'median of {args.repeat} steps after a warm-up')
    results = {}
    for name, model in (('MMRazor SingleTeacherDistill', stock),
                        ('mmdist FrozenTeacherDistill', ours)):
        times = time_steps(model, data, args.repeat, args.device)
        results[name] = statistics.median(times)
        print(f'{name:32s}{results[name] * 1e3:10.0f} ms/step')
        model.cpu()
    ratio = results['MMRazor SingleTeacherDistill'] / results[
        'mmdist FrozenTeacherDistill']
    print(f'speed-up: {ratio:.2f}x')


if __name__ == '__main__':
    main()
