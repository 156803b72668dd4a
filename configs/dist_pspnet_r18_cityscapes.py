# DIST from DeepLabV3 R101-D8 to pspnet R18-D8 on Cityscapes: see
# _base_/cityscapes_distill.py for the losses, the teacher and the schedule.
_base_ = [
    'mmseg::pspnet/pspnet_r18-d8_4xb2-80k_cityscapes-512x1024.py',
    './_base_/cityscapes_distill.py'
]
custom_imports = dict(imports=['mmdist'], allow_failed_imports=False)

model = dict(
    _delete_=True, architecture=_base_.model, **_base_.seg_distill_model)
train_dataloader = _base_.seg_train_dataloader
optim_wrapper = _base_.seg_optim_wrapper
param_scheduler = _base_.seg_param_scheduler
train_cfg = _base_.seg_train_cfg
default_hooks = _base_.mmdist_default_hooks
auto_scale_lr = dict(enable=False, base_batch_size=16)
