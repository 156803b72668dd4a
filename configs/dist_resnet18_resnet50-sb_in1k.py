# DIST from ResNet-50-SB (timm's "ResNet strikes back" A1, 80.12) to
# ResNet-18, a strong-recipe row of the paper (authors 74.5 top-1; KD 72.6;
# ResNet-18 alone 73.4), with the authors' strong recipe
# (_base_/in1k_strong_recipe.py, where it says how mmpretrain differs).
_base_ = [
    'mmpretrain::resnet/resnet18_8xb32_in1k.py', './_base_/in1k_distill.py',
    './_base_/in1k_strong_recipe.py'
]
custom_imports = dict(imports=['mmdist'], allow_failed_imports=False)

model = dict(
    _delete_=True,
    architecture=_base_.model,
    **_base_.cls_distill_model,
    **_base_.resnet50_sb_teacher)
model['architecture']['head']['loss'] = _base_.strong_head_loss
train_dataloader = _base_.strong_train_dataloader
optim_wrapper = _base_.strong_optim_wrapper
param_scheduler = _base_.strong_param_scheduler
train_cfg = _base_.strong_train_cfg
custom_hooks = _base_.strong_custom_hooks
auto_scale_lr = _base_.strong_auto_scale_lr
default_hooks = _base_.mmdist_default_hooks
