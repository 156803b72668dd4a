# DIST on the classification logits of every level:
# FCOS R101-caffe (ms 2x, 40.8 box AP) -> R50-caffe, the student's stock 1x
# schedule; both caffe-style, so they normalise images alike.
_base_ = [
    'mmdet::fcos/fcos_r50-caffe_fpn_gn-head_1x_coco.py',
    './_base_/logit_distill.py'
]
custom_imports = dict(imports=['mmdist'], allow_failed_imports=False)

model = dict(
    _delete_=True, architecture=_base_.model, **_base_.logit_distill_model)
model.update(
    teacher=dict(cfg_path='mmdet::fcos/fcos_r101-caffe_fpn_gn-head_'
                 'ms-640-800-2x_coco.py'),
    teacher_ckpt=(
        'https://download.openmmlab.com/mmdetection/v2.0/fcos/'
        'fcos_r101_caffe_fpn_gn-head_mstrain_640-800_2x_coco/'
        'fcos_r101_caffe_fpn_gn-head_mstrain_640-800_2x_coco-511424d6.pth'))
model['distiller']['logits']['cls'].update(
    student='bbox_head.conv_cls', teacher='bbox_head.conv_cls')
default_hooks = _base_.mmdist_default_hooks
