# DIST from the toy teacher to the toy student, with the distillation set-up
# of the real configs (../_base_/in1k_distill.py: CE + 2 x DIST on head.fc).
_base_ = ['./resnet18_toy.py']
custom_imports = dict(imports=['mmdist'], allow_failed_imports=False)

model = dict(
    _delete_=True, architecture=_base_.model, **_base_.cls_distill_model)
default_hooks = _base_.mmdist_default_hooks
# The teacher is the demo's own, built from the config it was trained with.
model.update(
    teacher=dict(cfg_path='{{ fileDirname }}/resnet34_toy_teacher.py'),
    teacher_ckpt='work_dirs/demo_classification/teacher/iter_300.pth')
