# Cascade Mask R-CNN X101-64x4d -> Faster R-CNN R50 on COCO: what the DIST
# and KD configs share. The student and the training set-up (data, 2x
# schedule, lr 0.02, 8 GPUs x 2 images) are mmdet's stock config; the teacher
# is mmdet's stock Cascade Mask R-CNN X101-64x4d (45.6 box AP), of which only
# the backbone, the FPN and the first cascade stage run: that stage
# classifies the RoIs that the student's sampler chose (512 per image).
_base_ = [
    'mmdet::faster_rcnn/faster-rcnn_r50_fpn_2x_coco.py', './roi_distill.py'
]
custom_imports = dict(imports=['mmdist'], allow_failed_imports=False)

teacher_ckpt = (
    'https://download.openmmlab.com/mmdetection/v2.0/cascade_rcnn/'
    'cascade_mask_rcnn_x101_64x4d_fpn_20e_coco/'
    'cascade_mask_rcnn_x101_64x4d_fpn_20e_coco_20200512_161033-bdb5126a.pth')

model = dict(_delete_=True, architecture=_base_.model,
             **_base_.roi_distill_model)
model.update(
    teacher=dict(
        cfg_path='mmdet::cascade_rcnn/'
        'cascade-mask-rcnn_x101-64x4d_fpn_20e_coco.py',
        pretrained=False),
    teacher_ckpt=teacher_ckpt)
# The 81 logits of each RoI (80 classes and background), the teacher's
# first cascade stage; each config sets the loss.
model['distiller']['logits']['roi_cls'].update(
    teacher='roi_head.bbox_head.0.fc_cls')

default_hooks = _base_.mmdist_default_hooks
auto_scale_lr = dict(enable=False, base_batch_size=16)
