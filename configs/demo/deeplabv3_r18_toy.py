# The student alone: mmseg's stock DeepLabV3 R18-D8 Cityscapes config on the
# demo's toy data. The demo's teacher and distilled students inherit this.
_base_ = [
    'mmseg::deeplabv3/deeplabv3_r18-d8_4xb2-80k_cityscapes-512x1024.py',
    './_base_/toy_cityscapes.py'
]
model = dict(pretrained=None, data_preprocessor=_base_.toy_data_preprocessor)
data_preprocessor = _base_.toy_data_preprocessor
train_dataloader = _base_.toy_train_dataloader
val_dataloader = _base_.toy_test_dataloader
test_dataloader = _base_.toy_test_dataloader
optim_wrapper = _base_.toy_optim_wrapper
param_scheduler = _base_.toy_param_scheduler
train_cfg = _base_.toy_train_cfg
default_hooks = _base_.toy_default_hooks
