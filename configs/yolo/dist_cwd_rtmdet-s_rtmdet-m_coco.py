# RTMDet-m -> RTMDet-s (mmyolo, COCO, 300 epochs): DIST on rtm_cls, every
# level, beside mmyolo's own CWD on the three neck outputs (its
# kd_s_rtmdet_m_neck_300e_coco.py: recorders, connectors, losses, hooks,
# distillation off after epoch 280). The teacher runs its head too.
_base_ = ['mmyolo::rtmdet/distillation/kd_s_rtmdet_m_neck_300e_coco.py',
          '../_base_/yolo_distill.py']
model = dict(
    type='mmdist.FrozenTeacherDistill',
    distiller=dict(
        type='mmdist.LogitDistiller',
        logits=dict(cls=dict(student=_base_.yolo_cls['rtmdet'],
                             teacher=_base_.yolo_cls['rtmdet'],
                             loss=_base_.sigmoid_dist))))
default_hooks = _base_.mmdist_default_hooks
