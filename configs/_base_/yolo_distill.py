# DIST on the classification branch of mmyolo's detectors, every level,
# sigmoid, a row per position (its priors x classes), as the RetinaNet
# configs distil retina_cls; the box branch, and YOLOv5's and YOLOX's
# objectness, are left undistilled, as the authors leave RetinaNet's box
# branch. A config inherits the student's stock mmyolo config and this
# file, then sets the teacher and the family's class-logit module:
#   model = dict(_delete_=True, architecture=_base_.model,
#                **_base_.logit_distill_model)
#   model.update(teacher=dict(cfg_path='mmyolo::...'), teacher_ckpt='...')
#   model['distiller']['logits']['cls'].update(
#       student=_base_.yolo_cls['rtmdet'], teacher=_base_.yolo_cls['rtmdet'])
#   custom_hooks = [*_base_.custom_hooks, dict(
#       type='mmrazor.StopDistillHook', stop_epoch=_base_.max_epochs - 20)]
# mmyolo's schedule stays as it is (EMA, the pipeline switch); as mmyolo's
# KD configs, distillation stops for the last 20 epochs (the student
# alone; mmdist's algorithm then skips the teachers' forward too).
_base_ = ['./logit_distill.py']
custom_imports = dict(imports=['mmdist'], allow_failed_imports=False)

# The class-logit module of each family's head: a ModuleList, a level each.
yolo_cls = dict(
    rtmdet='bbox_head.head_module.rtm_cls',
    # Sequentials whose last layer is the logits' conv.
    yolov8='bbox_head.head_module.cls_preds',
    # 3 priors x (4 box + 1 objectness + the classes): see channels.
    yolov5='bbox_head.head_module.convs_pred',
    yolox='bbox_head.head_module.multi_level_conv_cls')
