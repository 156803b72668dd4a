# DIST from the toy teacher to the toy student, with the distillation set-up
# of the real configs (../_base_/cityscapes_distill.py: recorders, DIST on
# both heads, every pixel).
_base_ = ['./deeplabv3_r18_toy.py', '../_base_/cityscapes_distill.py']
custom_imports = dict(imports=['mmdist'], allow_failed_imports=False)

model = dict(
    _delete_=True, architecture=_base_.model, **_base_.seg_distill_model)
default_hooks = _base_.mmdist_default_hooks
# The teacher is the demo's own, built from the config it was trained with.
model.update(
    teacher=dict(cfg_path='{{ fileDirname }}/deeplabv3_r101_toy_teacher.py'),
    teacher_ckpt='work_dirs/demo/teacher/iter_150.pth')
