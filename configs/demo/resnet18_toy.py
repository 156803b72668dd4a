# The student alone: mmpretrain's stock ResNet-18 ImageNet config on the
# classification demo's toy data, with the authors' baseline optimiser
# (../_base_/in1k_distill.py). The demo's teacher and distilled students
# inherit this.
_base_ = [
    'mmpretrain::resnet/resnet18_8xb32_in1k.py',
    '../_base_/in1k_distill.py', './_base_/toy_imagenet.py'
]
model = _base_.toy_model
data_preprocessor = _base_.toy_data_preprocessor
train_dataloader = _base_.toy_train_dataloader
val_dataloader = _base_.toy_test_dataloader
test_dataloader = _base_.toy_test_dataloader
val_evaluator = _base_.toy_evaluator
test_evaluator = _base_.toy_evaluator
optim_wrapper = _base_.in1k_baseline_optim_wrapper
param_scheduler = _base_.toy_param_scheduler
train_cfg = _base_.toy_train_cfg
default_hooks = _base_.toy_default_hooks
log_processor = _base_.toy_log_processor
