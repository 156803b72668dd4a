# DIST from the toy teacher to the toy student, with the loss of the real
# config (../dist_retinanet_r50_coco.py: retina_cls of every FPN level,
# sigmoid, a row per position).
_base_ = ['./retinanet_r18_toy.py', '../_base_/logit_distill.py']
custom_imports = dict(imports=['mmdist'], allow_failed_imports=False)

model = dict(
    _delete_=True, architecture=_base_.model, **_base_.logit_distill_model)
default_hooks = _base_.mmdist_default_hooks
# The teacher is the demo's own, built from the config it was trained with.
model.update(
    teacher=dict(cfg_path='{{ fileDirname }}/retinanet_r34_toy_teacher.py'),
    teacher_ckpt='work_dirs/demo_detection/teacher/iter_400.pth')
model['distiller']['logits']['cls'].update(
    student='bbox_head.retina_cls', teacher='bbox_head.retina_cls')
