# YOLOv5-l -> YOLOv5-s (mmyolo, COCO, 300 epochs): DIST on the class logits
# of convs_pred (3 priors x 80 classes a position), every level; the
# objectness and box channels are left, as the authors leave RetinaNet's
# box branch. mmyolo's schedule, distillation off for the last 20 epochs.
_base_ = ['mmyolo::yolov5/yolov5_s-v61_syncbn_fast_8xb16-300e_coco.py',
          '../_base_/yolo_distill.py']
model = dict(_delete_=True, architecture=_base_.model,
             **_base_.logit_distill_model)
model.update(
    teacher=dict(cfg_path='mmyolo::yolov5/yolov5_l-v61_syncbn_fast_8xb16-300e_coco.py'),  # noqa: E501
    teacher_ckpt='https://download.openmmlab.com/mmyolo/v0/yolov5/yolov5_l-v61_syncbn_fast_8xb16-300e_coco/yolov5_l-v61_syncbn_fast_8xb16-300e_coco_20220917_031007-096ef0eb.pth')  # noqa: E501
model['distiller']['logits']['cls'].update(
    student=_base_.yolo_cls['yolov5'], teacher=_base_.yolo_cls['yolov5'],
    channels=dict(groups=3, start=5, stop=5 + _base_.num_classes))
custom_hooks = [*_base_.custom_hooks, dict(
    type='mmrazor.StopDistillHook', stop_epoch=_base_.max_epochs - 20)]
default_hooks = _base_.mmdist_default_hooks
