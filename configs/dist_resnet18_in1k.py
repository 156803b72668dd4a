# DIST from ResNet-34 to ResNet-18 on ImageNet, the paper's baseline row
# (authors 72.07 top-1; KD 71.21; ResNet-18 alone 69.76) with the authors'
# recipe (_base_/in1k_distill.py). The teacher is mmpretrain's ResNet-34
# (73.62), the authors' is torchvision's (73.31).
_base_ = [
    'mmpretrain::resnet/resnet18_8xb32_in1k.py', './_base_/in1k_distill.py'
]
custom_imports = dict(imports=['mmdist'], allow_failed_imports=False)

model = dict(
    _delete_=True,
    architecture=_base_.model,
    **_base_.cls_distill_model,
    **_base_.resnet34_teacher)
optim_wrapper = _base_.in1k_baseline_optim_wrapper
default_hooks = _base_.mmdist_default_hooks
