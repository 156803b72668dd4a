# RTMDet-m -> RTMDet-s (mmyolo, COCO, 300 epochs): DIST on rtm_cls, every
# level; mmyolo's schedule, distillation off for the last 20 epochs.
_base_ = ['mmyolo::rtmdet/rtmdet_s_syncbn_fast_8xb32-300e_coco.py',
          '../_base_/yolo_distill.py']
model = dict(_delete_=True, architecture=_base_.model,
             **_base_.logit_distill_model)
model.update(
    teacher=dict(cfg_path='mmyolo::rtmdet/rtmdet_m_syncbn_fast_8xb32-300e_coco.py'),  # noqa: E501
    teacher_ckpt='https://download.openmmlab.com/mmyolo/v0/rtmdet/rtmdet_m_syncbn_fast_8xb32-300e_coco/rtmdet_m_syncbn_fast_8xb32-300e_coco_20230102_135952-40af4fe8.pth')  # noqa: E501
model['distiller']['logits']['cls'].update(
    student=_base_.yolo_cls['rtmdet'], teacher=_base_.yolo_cls['rtmdet'])
custom_hooks = [*_base_.custom_hooks, dict(
    type='mmrazor.StopDistillHook', stop_epoch=_base_.max_epochs - 20)]
default_hooks = _base_.mmdist_default_hooks
