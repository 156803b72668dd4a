"""The mmcv ops that the teacher of the two-stage setting calls alone, as
``tools/test.py --teacher`` runs it (the settings themselves, training and
prediction, are checked through tools/check_ops.py in
tests/test_tools/test_check_ops.py; tests/test_gpu repeats both on a GPU,
where mmdet also calls mmcv's sigmoid focal loss)."""
import mmdist  # noqa: F401
import pytest
from mmdist.ops.ext import OPS
from mmdist.testing import (SETTINGS, build_setting, make_batch,
                            record_mmcv_ops)


@pytest.mark.slow
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
