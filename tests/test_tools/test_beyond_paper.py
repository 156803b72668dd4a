"""The configs beyond the paper through tools/train.py on generated data:
their stock pipelines (RTMDet's mosaic and mix-up, SegFormer's crops) and
hooks (RTMDet's EMA), shrunk through --cfg-options; two iterations and a
validation with the teacher's metric."""
import math

import pytest
from mmengine.config import Config

from tests.utils import (REPO, cityscapes_options, coco_options,
                         read_scalars, run_tool, save_random_model)

RTMDET_PIPELINE = [
    'train_dataloader.dataset.pipeline.2.img_scale=(128,128)',
    'train_dataloader.dataset.pipeline.3.scale=(256,256)',
    'train_dataloader.dataset.pipeline.4.crop_size=(128,128)',
    'train_dataloader.dataset.pipeline.7.size=(128,128)',
    'train_dataloader.dataset.pipeline.8.img_scale=(128,128)',
    'val_dataloader.dataset.pipeline.2.size=(128,128)',
    'test_dataloader.dataset.pipeline.2.size=(128,128)',
]
# (config, levels of the logits, logits entry)
CONFIGS = [('dist_fcos_r50_coco', 5, 'cls'), ('dist_atss_r50_coco', 5, 'cls'),
           ('dist_gfl_r50_coco', 5, 'cls'), ('dist_rtmdet_s_coco', 3, 'cls'),
           ('dist_segformer_mit-b0_cityscapes', 1, 'cls'),
           ('dist_deeplabv3_r18_segformer-mit-b5_cityscapes', 1, 'decode')]


@pytest.mark.parametrize('name, levels, entry', CONFIGS)
def test_trains_two_iterations_through_the_tools(name, levels, entry,
                                                 coco_root, cityscapes_root,
                                                 tmp_path):
    config = f'configs/{name}.py'
    teacher = Config.fromfile(f'{REPO}/{config}').model.teacher.cfg_path
    ckpt = save_random_model(teacher, str(tmp_path / 'teacher.pth'))
    if 'cityscapes' in name:
        options = cityscapes_options(cityscapes_root)
        if 'deeplabv3' in name:  # its ImageNet weights: no download here
            options.append('model.architecture.pretrained=None')
    else:
        options = coco_options(coco_root) + [
            'train_cfg.max_epochs=1', 'train_cfg.val_interval=1',
            'model.architecture.test_cfg.score_thr=0.0']
        if 'rtmdet' in name:
            options = [o for o in options if '.pipeline.2.scale' not in o]
            options += RTMDET_PIPELINE
    work_dir = str(tmp_path / 'work_dir')
    run_tool(['tools/train.py', config, '--work-dir', work_dir,
              '--cfg-options', *options, f'model.teacher_ckpt={ckpt}',
              'model.architecture.backbone.init_cfg=None'])
    rows = read_scalars(work_dir)
    train = [r for r in rows if 'loss' in r]
    assert len(train) == 2
    for row in train:
        keys = [f'distill.loss_{entry}'] + [
            f'distill.{entry}_l{i}' for i in range(levels if levels > 1
                                                   else 0)]
        for key in keys:
            assert math.isfinite(row[key]), (key, row)
    # The teacher was evaluated at the first validation.
    assert any(k.startswith('teacher/') for r in rows for k in r)
