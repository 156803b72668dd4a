# DIST from the toy RTMDet-s to the toy RTMDet-tiny, with the set-up of
# the real configs (../yolo/dist_rtmdet-tiny_rtmdet-s_coco.py: rtm_cls of
# every level, sigmoid, a row per position).
_base_ = ['./rtmdet_tiny_toy.py', '../_base_/yolo_distill.py']

model = dict(
    _delete_=True, architecture=_base_.model, **_base_.logit_distill_model)
default_hooks = _base_.mmdist_default_hooks
# The teacher is the demo's own, built from the config it was trained with.
model.update(
    teacher=dict(cfg_path='{{ fileDirname }}/rtmdet_s_toy_teacher.py'),
    teacher_ckpt='work_dirs/demo_yolo/teacher/iter_800.pth')
model['distiller']['logits']['cls'].update(
    student=_base_.yolo_cls['rtmdet'], teacher=_base_.yolo_cls['rtmdet'])
