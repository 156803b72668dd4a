# The student alone: mmyolo's stock RTMDet-tiny config on the YOLO demo's
# toy data. The demo's teacher and distilled students inherit this.
_base_ = [
    'mmyolo::rtmdet/rtmdet_tiny_syncbn_fast_8xb32-300e_coco.py',
    './_base_/toy_yolo.py'
]
model = _base_.toy_model
train_dataloader = _base_.toy_train_dataloader
val_dataloader = _base_.toy_test_dataloader
test_dataloader = _base_.toy_test_dataloader
val_evaluator = _base_.toy_evaluator
test_evaluator = _base_.toy_evaluator
optim_wrapper = _base_.toy_optim_wrapper
param_scheduler = _base_.toy_param_scheduler
train_cfg = _base_.toy_train_cfg
default_hooks = _base_.toy_default_hooks
log_processor = _base_.toy_log_processor
custom_hooks = _base_.toy_custom_hooks
