"""The mmcv ops that the paper's four settings call, found by running them:
a training step and a prediction of each, on CPU. Every one must have a
torch/torchvision version in mmdist.ops (tests/test_gpu repeats this on a
GPU, where mmdet also calls mmcv's sigmoid focal loss)."""
import pytest

import mmdist  # noqa: F401
from mmdist.ops.ext import OPS
from mmdist.testing import (SETTINGS, build_setting, make_batch,
                            record_mmcv_ops, train_and_predict)

# Called by the settings on CPU, at the least (the inventory is not empty).
EXPECTED = {
    'retinanet': {'nms'},
    'faster_rcnn': {'nms', 'roi_align_forward', 'roi_align_backward'},
    'deeplabv3': set(),
    'pspnet': set(),
}


@pytest.mark.parametrize('setting', SETTINGS, ids=lambda s: s.name)
def test_every_mmcv_op_a_setting_calls_has_a_torch_version(setting):
    size = (128, 128) if setting.task == 'det' else (64, 128)
    model = build_setting(setting, 'mmdist', image_size=size)
    with record_mmcv_ops() as called:
        train_and_predict(model, make_batch(setting, 2, size))
    assert EXPECTED[setting.name] <= called
    assert called <= set(OPS), called - set(OPS)


def test_the_cascade_mask_rcnn_teacher_alone_has_every_op():
    # What tools/test.py --teacher runs on the two-stage setting: the
    # teacher's own prediction, three box stages and the mask head.
    import torch
    setting = next(s for s in SETTINGS if s.name == 'faster_rcnn')
    teacher = build_setting(setting, 'mmdist', image_size=(128, 128)).teacher
    teacher.eval()
    teacher.roi_head.test_cfg.score_thr = 0.0  # random weights score low
    with record_mmcv_ops() as called, torch.no_grad():
        results = teacher.val_step(make_batch(setting, 2, (128, 128)))
    assert all(len(r.pred_instances.masks) > 0 for r in results)
    assert {'nms', 'roi_align_forward'} <= called
    assert called <= set(OPS), called - set(OPS)
