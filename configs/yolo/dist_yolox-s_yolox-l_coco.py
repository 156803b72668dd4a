# YOLOX-l -> YOLOX-s (mmyolo, COCO, 300 epochs): DIST on multi_level_conv_cls,
# every level; the objectness is left, as the authors leave RetinaNet's box
# branch. mmyolo's schedule, distillation off for the last 20 epochs.
_base_ = ['mmyolo::yolox/yolox_s_fast_8xb8-300e_coco.py',
          '../_base_/yolo_distill.py']
model = dict(_delete_=True, architecture=_base_.model,
             **_base_.logit_distill_model)
model.update(
    teacher=dict(cfg_path='mmyolo::yolox/yolox_l_fast_8xb8-300e_coco.py'),
    teacher_ckpt='https://download.openmmlab.com/mmyolo/v0/yolox/yolox_l_fast_8xb8-300e_coco/yolox_l_fast_8xb8-300e_coco_20230213_160715-c731eb1c.pth')  # noqa: E501
model['distiller']['logits']['cls'].update(
    student=_base_.yolo_cls['yolox'], teacher=_base_.yolo_cls['yolox'])
custom_hooks = [*_base_.custom_hooks, dict(
    type='mmrazor.StopDistillHook', stop_epoch=_base_.max_epochs - 20)]
default_hooks = _base_.mmdist_default_hooks
