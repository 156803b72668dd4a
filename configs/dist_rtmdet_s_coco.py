# DIST on the classification logits of every level:
# RTMDet-L (300e, 51.3 box AP) -> RTMDet-S, the student's stock 300e
# schedule. rtm_cls is a ModuleList, one conv per level: each level is
# distilled with its partner.
_base_ = [
    'mmdet::rtmdet/rtmdet_s_8xb32-300e_coco.py',
    './_base_/logit_distill.py'
]
custom_imports = dict(imports=['mmdist'], allow_failed_imports=False)

model = dict(
    _delete_=True, architecture=_base_.model, **_base_.logit_distill_model)
model.update(
    teacher=dict(cfg_path='mmdet::rtmdet/rtmdet_l_8xb32-300e_coco.py'),
    teacher_ckpt=(
        'https://download.openmmlab.com/mmdetection/v3.0/rtmdet/'
        'rtmdet_l_8xb32-300e_coco/'
        'rtmdet_l_8xb32-300e_coco_20220719_112030-5a0be7c4.pth'))
model['distiller']['logits']['cls'].update(
    student='bbox_head.rtm_cls', teacher='bbox_head.rtm_cls')
default_hooks = _base_.mmdist_default_hooks
