"""mmdist's YOLO configs (configs/yolo/: mmyolo's RTMDet, YOLOv8, YOLOv5
and YOLOX students) through tools/train.py on a generated COCO-layout data
set, small: DIST while mmyolo's schedule runs (its Mosaic pipelines, EMA,
the pipeline switch), distillation stopped for the last epoch, and a run
killed with SIGKILL that resumes to the uninterrupted run's losses."""
import glob
import math
import os.path as osp
import signal

import pytest

from tests.utils import (REPO, batches, kill_during, last_run_losses, losses,
                         run_tool)
from tests.yolo_configs import small_yolo_config

CONFIGS = sorted(glob.glob(osp.join(REPO, 'configs', 'yolo', '*.py')))
NAMES = [osp.splitext(osp.basename(c))[0] for c in CONFIGS]
EPOCHS = 3  # two distilled, the last one not (iterations 5 and 6)
ENV = dict(PYTHONPATH=REPO)  # tests.record_batches


@pytest.fixture(scope='module')
def yolo_coco(module_tmp) -> str:
    from mmdist.datasets import make_coco
    root = str(module_tmp('coco') / 'coco')
    make_coco(root, num_train=4, num_val=2, image_size=(128, 128), seed=0)
    return root


def small_config(name: str, root: str, folder) -> str:
    """configs/yolo/<name>.py at 128 pixels, random weights, the test
    hooks that record the batches and hold the run where it is killed."""
    cfg = small_yolo_config(osp.join(REPO, 'configs', 'yolo', name + '.py'),
                            root, epochs=EPOCHS)
    cfg.model.teacher_ckpt = None
    cfg.custom_imports = dict(imports=['mmdist', 'tests.record_batches'],
                              allow_failed_imports=False)
    cfg.custom_hooks = [*cfg.custom_hooks,
                        dict(type='TestRecordBatchesHook'),
                        dict(type='TestPauseHook')]
    cfg.randomness = dict(seed=0, deterministic=True)
    cfg.log_processor = dict(by_epoch=True, window_size=1)
    path = str(folder / f'{name}.py')
    cfg.dump(path)
    return path


# Only the run that is killed saves checkpoints (epoch_1.pth, resumed from).
NO_CHECKPOINTS = ['--cfg-options', 'default_hooks.checkpoint.interval=100',
                  'default_hooks.checkpoint.save_last=False']


def train_and_stop_distilling(config: str, work_dir: str) -> dict:
    """An uninterrupted run: DIST in the first two epochs, the student's
    losses alone in the last; its losses by iteration."""
    done = run_tool(['tools/train.py', config, '--work-dir', work_dir,
                     *NO_CHECKPOINTS], env=ENV)
    assert 'Distillation has been stopped!' in done.stdout + done.stderr
    expected = losses(work_dir)
    assert sorted(expected) == list(range(1, 2 * EPOCHS + 1))
    for iteration, row in expected.items():
        student = sum(v for k, v in row.items()
                      if k.startswith('student.loss'))
        if iteration <= 4:  # distilled: the student's losses and DIST's
            assert math.isfinite(row['distill.loss_cls'])
            assert row['loss'] > student
        else:  # the last epoch: the student's losses alone
            assert row['loss'] == pytest.approx(student, rel=1e-5)
    return expected


# RTMDet-tiny's run in make test, the other configs' in make test-slow
# (RTMDet-l from RTMDet-x writes a checkpoint of 800 MB).
@pytest.mark.parametrize('name', [
    n if n == 'dist_rtmdet-tiny_rtmdet-s_coco' else
    pytest.param(n, marks=pytest.mark.slow) for n in NAMES])
def test_distils_stops_and_resumes_exactly(name, yolo_coco, tmp_path):
    config = small_config(name, yolo_coco, tmp_path)
    never_killed = str(tmp_path / 'never_killed')
    expected = train_and_stop_distilling(config, never_killed)
    killed = str(tmp_path / 'killed')
    args = [config, '--work-dir', killed]
    assert kill_during(killed, args, 3, env=ENV) == -signal.SIGKILL
    run_tool(['tools/train.py', *args, '--resume', *NO_CHECKPOINTS],
             env=ENV)
    after = last_run_losses(killed)
    assert sorted(after) == list(range(3, 2 * EPOCHS + 1))
    assert {i: expected[i] for i in after} == after
    assert batches(killed) == batches(never_killed)


def stock_options(root: str, size: int = 128) -> list:
    """--cfg-options that point mmyolo's RTMDet config, as it is, at the
    generated data, at ``size`` pixels, for a CPU: as a user would."""
    root = root.rstrip('/') + '/'
    ann = root + 'annotations/instances_val2017.json'
    square = f'({size},{size})'
    options = [f'{split}_dataloader.dataset.data_root={root}'
               for split in ('train', 'val', 'test')]
    options += [f'{split}_evaluator.ann_file={ann}'
                for split in ('val', 'test')]
    for split in ('val', 'test'):
        options += [f'{split}_dataloader.dataset.pipeline.1.scale={square}',
                    f'{split}_dataloader.dataset.pipeline.2.scale={square}',
                    f'{split}_dataloader.dataset.batch_shapes_cfg=None',
                    f'{split}_dataloader.batch_size=1',
                    f'{split}_dataloader.num_workers=0',
                    f'{split}_dataloader.persistent_workers=False']
    return options


def spread_head(checkpoint: str, path: str) -> str:
    """``checkpoint`` with the student's class and box convs drawn at a
    scale that spreads their scores and boxes, saved as ``path``.

    RTMDet's box conv gives the distances from a point to the box's sides
    as they are: a positive bias keeps them positive, so the boxes are
    proper ones, which the agreement compares (inverted ones it only
    counts)."""
    import torch
    saved = torch.load(checkpoint, map_location='cpu', weights_only=False)
    generator = torch.Generator().manual_seed(0)
    head = 'architecture.bbox_head.head_module.'
    for key, value in saved['state_dict'].items():
        if key.startswith(head + 'rtm_cls'):
            value.copy_(torch.randn(value.shape, generator=generator) * 0.3)
        elif key.startswith(head + 'rtm_reg') and key.endswith('.weight'):
            value.copy_(torch.randn(value.shape, generator=generator) * 0.3)
        elif key.startswith(head + 'rtm_reg'):
            value.copy_(1 + 3 * torch.rand(value.shape, generator=generator))
    torch.save(saved, path)
    return path


@pytest.mark.slow
def test_the_student_goes_back_to_mmyolo_and_to_onnx(yolo_coco, tmp_path):
    """A distilled RTMDet-tiny: tools/convert_student.py's checkpoint scores
    with mmyolo's own test tool and the stock config what tools/test.py
    scores on the distillation checkpoint; tools/deploy.py exports a
    student of the distillation config through mmyolo's mmdeploy codebase
    and it agrees under ONNX Runtime."""
    from tests.utils import check_stock_tool_agrees, compare_detections
    cfg = small_yolo_config(osp.join(REPO, 'configs', 'yolo',
                                     'dist_rtmdet-tiny_rtmdet-s_coco.py'),
                            yolo_coco, epochs=1)
    cfg.model.teacher_ckpt = None
    config = str(tmp_path / 'dist_rtmdet_tiny.py')
    cfg.dump(config)
    work_dir = str(tmp_path / 'distil')
    run_tool(['tools/train.py', config, '--work-dir', work_dir], env=ENV)
    ckpt = osp.join(work_dir, 'epoch_1.pth')
    stock = 'rtmdet/rtmdet_tiny_syncbn_fast_8xb32-300e_coco.py'
    metrics = check_stock_tool_agrees(
        config, ckpt, 'mmyolo', stock, stock_options(yolo_coco),
        ['backbone.init_cfg=None'], str(tmp_path), 'theirs.pkl',
        compare_detections)
    assert 'coco/bbox_mAP' in metrics

    # RTMDet's head starts at one score (its prior, 0.01) and boxes of no
    # size, and one epoch on four images keeps it there: the head is drawn
    # anew. Its scores still come in near-ties (within the 1e-7 the two
    # runtimes differ by), and which of two such boxes NMS keeps is
    # arbitrary: with an IoU threshold of 1 NMS removes no box, so the
    # check compares the graph, not tie-breaking (at most the last of the
    # 300 boxes kept can differ). The detection and the YOLO demos check
    # NMS on trained students.
    varied = spread_head(ckpt, str(tmp_path / 'varied.pth'))
    out = str(tmp_path / 'onnx')
    done = run_tool(['tools/deploy.py', config, varied, '--out', out,
                     '--cfg-options',
                     'model.architecture.test_cfg.nms.iou_threshold=1.0'],
                    env=ENV)
    assert 'Within the tolerances.' in done.stdout
    with open(osp.join(out, 'report.json')) as f:
        import json
        report = json.load(f)
    assert report['task'] == 'yolo' and report['passed']
    assert report['agreement']['boxes_pytorch'] > 0


def cache_backbone_weights(config: str, torch_home: str) -> None:
    """Random ImageNet weights for ``config``'s backbone where its
    ``init_cfg`` downloads them from (torch.hub's cache in ``torch_home``),
    as if downloaded once before."""
    import os

    import torch
    from mmengine.hub import get_config
    from mmengine.registry import MODELS, init_default_scope
    cfg = get_config(config)
    backbone = dict(cfg.model.backbone)
    url = backbone.pop('init_cfg')['checkpoint']
    init_default_scope(config.split('::')[0])
    state = MODELS.build(backbone).state_dict()
    folder = osp.join(torch_home, 'hub', 'checkpoints')
    os.makedirs(folder, exist_ok=True)
    torch.save(dict(state_dict={f'backbone.{k}': v for k, v in state.items()}),
               osp.join(folder, osp.basename(url)))


def test_mmyolos_own_kd_config_runs_unchanged(yolo_coco, tmp_path):
    """mmyolo's kd_tiny_rtmdet_s_neck_300e_coco.py (MMRazor's
    FpnTeacherDistill, CWD on the neck), as it ships, through mmdist's
    tools/train.py: only --cfg-options for the data, the sizes of a CPU
    and a teacher file, as a user gives them."""
    from tests.utils import mim_path, read_scalars, save_random_model
    config = mim_path('mmyolo', 'configs', 'rtmdet', 'distillation',
                      'kd_tiny_rtmdet_s_neck_300e_coco.py')
    teacher = save_random_model(
        'mmyolo::rtmdet/rtmdet_s_syncbn_fast_8xb32-300e_coco.py',
        str(tmp_path / 'rtmdet_s.pth'))
    torch_home = str(tmp_path / 'torch')
    cache_backbone_weights(
        'mmyolo::rtmdet/rtmdet_tiny_syncbn_fast_8xb32-300e_coco.py',
        torch_home)
    train = 'train_dataloader.dataset.pipeline'
    work_dir = str(tmp_path / 'kd')
    run_tool(['tools/train.py', config, '--work-dir', work_dir,
              '--cfg-options', *stock_options(yolo_coco),
              f'{train}.2.img_scale=(128,128)', f'{train}.3.scale=(256,256)',
              f'{train}.4.crop_size=(128,128)', f'{train}.7.size=(128,128)',
              'train_dataloader.batch_size=2',
              'train_dataloader.num_workers=0',
              'train_dataloader.persistent_workers=False',
              'train_cfg.max_epochs=1', f'model.teacher_ckpt={teacher}',
              'default_hooks.logger.interval=1',
              'default_hooks.checkpoint.save_last=False'],
             env=dict(ENV, TORCH_HOME=torch_home))
    rows = [r for r in read_scalars(work_dir) if 'loss' in r]
    assert len(rows) == 2
    for row in rows:
        for level in range(3):
            assert math.isfinite(row[f'distill.loss_fpn{level}'])
