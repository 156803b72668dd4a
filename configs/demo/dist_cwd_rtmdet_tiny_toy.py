# DIST on rtm_cls beside mmyolo's CWD on the neck, toy RTMDet-s to
# RTMDet-tiny, as ../yolo/dist_cwd_rtmdet-s_rtmdet-m_coco.py: mmyolo's
# distiller (./kd_cwd_rtmdet_tiny_toy.py) with a logits entry, and mmdist's
# algorithm, whose teacher runs its head too.
_base_ = ['./kd_cwd_rtmdet_tiny_toy.py', '../_base_/yolo_distill.py']
model = dict(
    type='mmdist.FrozenTeacherDistill',
    distiller=dict(
        type='mmdist.LogitDistiller',
        logits=dict(cls=dict(student=_base_.yolo_cls['rtmdet'],
                             teacher=_base_.yolo_cls['rtmdet'],
                             loss=_base_.sigmoid_dist))))
default_hooks = _base_.mmdist_default_hooks
