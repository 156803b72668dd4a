# DIST on the classification logits of every level:
# ATSS R101 (1x, 41.5 box AP) -> R50, the student's stock 1x schedule.
_base_ = [
    'mmdet::atss/atss_r50_fpn_1x_coco.py',
    './_base_/logit_distill.py'
]
custom_imports = dict(imports=['mmdist'], allow_failed_imports=False)

model = dict(
    _delete_=True, architecture=_base_.model, **_base_.logit_distill_model)
model.update(
    teacher=dict(cfg_path='mmdet::atss/atss_r101_fpn_1x_coco.py'),
    teacher_ckpt=(
        'https://download.openmmlab.com/mmdetection/v2.0/atss/'
        'atss_r101_fpn_1x_coco/atss_r101_fpn_1x_20200825-dfcadd6f.pth'))
model['distiller']['logits']['cls'].update(
    student='bbox_head.atss_cls', teacher='bbox_head.atss_cls')
default_hooks = _base_.mmdist_default_hooks
