# YOLOv8-l -> YOLOv8-s (mmyolo, COCO, 500 epochs): DIST on cls_preds, every
# level; mmyolo's schedule, distillation off for the last 20 epochs.
_base_ = ['mmyolo::yolov8/yolov8_s_syncbn_fast_8xb16-500e_coco.py',
          '../_base_/yolo_distill.py']
model = dict(_delete_=True, architecture=_base_.model,
             **_base_.logit_distill_model)
model.update(
    teacher=dict(cfg_path='mmyolo::yolov8/yolov8_l_syncbn_fast_8xb16-500e_coco.py'),  # noqa: E501
    teacher_ckpt='https://download.openmmlab.com/mmyolo/v0/yolov8/yolov8_l_syncbn_fast_8xb16-500e_coco/yolov8_l_syncbn_fast_8xb16-500e_coco_20230217_182526-189611b6.pth')  # noqa: E501
model['distiller']['logits']['cls'].update(
    student=_base_.yolo_cls['yolov8'], teacher=_base_.yolo_cls['yolov8'])
custom_hooks = [*_base_.custom_hooks, dict(
    type='mmrazor.StopDistillHook', stop_epoch=_base_.max_epochs - 20)]
default_hooks = _base_.mmdist_default_hooks
