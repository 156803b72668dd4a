# RetinaNet X101-64x4d -> R50 on COCO: what the DIST and KD configs share.
# The student and the whole training set-up (data, 2x schedule, lr 0.01,
# 8 GPUs x 2 images) are mmdet's stock config; the teacher is mmdet's stock
# X101-64x4d config, loaded from its model-zoo checkpoint.
_base_ = [
    'mmdet::retinanet/retinanet_r50_fpn_2x_coco.py', './mmdist_hooks.py'
]
custom_imports = dict(imports=['mmdist'], allow_failed_imports=False)

teacher_ckpt = ('https://download.openmmlab.com/mmdetection/v2.0/retinanet/'
                'retinanet_x101_64x4d_fpn_1x_coco/'
                'retinanet_x101_64x4d_fpn_1x_coco_20200130-366f5af1.pth')

model = dict(
    _delete_=True,
    _scope_='mmrazor',
    type='mmdist.FrozenTeacherDistill',
    architecture=_base_.model,
    teacher=dict(
        cfg_path='mmdet::retinanet/retinanet_x101-64x4d_fpn_1x_coco.py',
        pretrained=False),
    teacher_ckpt=teacher_ckpt,
    # The raw classification logits, (N, 9 x 80, H, W), of each FPN level
    # (P3-P7: retina_cls runs once per level); each config sets the loss.
    distiller=dict(
        type='mmdist.LogitDistiller',
        logits=dict(cls=dict(student='bbox_head.retina_cls',
                             teacher='bbox_head.retina_cls'))))

default_hooks = _base_.mmdist_default_hooks
# The schedule of mmdet's config is written for 8 GPUs x 2 images.
auto_scale_lr = dict(enable=False, base_batch_size=16)
