# DIST on the classification logits of every level:
# GFL X101-32x4d with deformable convolutions in stages 4-5 (ms 2x, 48.1
# box AP, mmdet's strongest GFL) -> R50, the student's stock 1x schedule.
_base_ = [
    'mmdet::gfl/gfl_r50_fpn_1x_coco.py',
    './_base_/logit_distill.py'
]
custom_imports = dict(imports=['mmdist'], allow_failed_imports=False)

model = dict(
    _delete_=True, architecture=_base_.model, **_base_.logit_distill_model)
model.update(
    teacher=dict(
        cfg_path='mmdet::gfl/gfl_x101-32x4d-dconv-c4-c5_fpn_ms-2x_coco.py'),
    teacher_ckpt=(
        'https://download.openmmlab.com/mmdetection/v2.0/gfl/'
        'gfl_x101_32x4d_fpn_dconv_c4-c5_mstrain_2x_coco/'
        'gfl_x101_32x4d_fpn_dconv_c4-c5_mstrain_2x_coco_20200630_102002-'
        '14a2bf25.pth'))
model['distiller']['logits']['cls'].update(
    student='bbox_head.gfl_cls', teacher='bbox_head.gfl_cls')
default_hooks = _base_.mmdist_default_hooks
