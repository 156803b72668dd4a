# mmyolo's own distillation of RTMDet-tiny from RTMDet-s on the toy data:
# the algorithm and distiller of its kd_tiny_rtmdet_s_neck_300e_coco.py as
# they are (MMRazor's FpnTeacherDistill, CWD on the three neck outputs
# through its connectors), the toy student and teacher in place of its
# stock ones, the toy schedule.
_base_ = ['./rtmdet_tiny_toy.py']
from mmengine.config import Config  # noqa: E402
from mmengine.hub import get_config  # noqa: E402

kd = get_config(
    'mmyolo::rtmdet/distillation/kd_tiny_rtmdet_s_neck_300e_coco.py')
model = dict(
    kd.model.to_dict(), _delete_=True, architecture=_base_.model,
    teacher=Config._merge_a_into_b(_base_.toy_teacher_model, _base_.model),
    teacher_ckpt='work_dirs/demo_yolo/teacher/iter_800.pth')
find_unused_parameters = kd.find_unused_parameters
del kd, Config, get_config
