# Beyond the paper: DIST from two RetinaNet teachers at once on COCO, the
# paper's X101-64x4d (1x, 41.0 box AP) and R101 (multi-scale 3x, 41.0),
# into R50 (dist_retinanet_r50_coco.py otherwise). Both share the
# student's anchors (9 a position) and normalisation, checked when the
# model is built: dense logits are distilled anchor by anchor. One DIST
# term per teacher on retina_cls of every FPN level, weight 1 each;
# combine='ensemble' distils from the average of their probabilities.
_base_ = ['./dist_retinanet_r50_coco.py']

model = dict(
    teacher=None, teacher_ckpt=None,
    teachers=dict(
        x101=dict(
            cfg_path='mmdet::retinanet/retinanet_x101-64x4d_fpn_1x_coco.py',
            ckpt=_base_.teacher_ckpt),
        r101=dict(
            cfg_path='mmdet::retinanet/'
            'retinanet_r101_fpn_ms-640-800-3x_coco.py',
            ckpt=('https://download.openmmlab.com/mmdetection/v2.0/'
                  'retinanet/retinanet_r101_fpn_mstrain_3x_coco/'
                  'retinanet_r101_fpn_mstrain_3x_coco_20210720_214650-'
                  '7ee888e0.pth'))),
    distiller=dict(logits=dict(
        cls=dict(
            _delete_=True,
            student='bbox_head.retina_cls',
            teachers=dict(x101=dict(module='bbox_head.retina_cls'),
                          r101=dict(module='bbox_head.retina_cls')),
            combine='per_teacher',
            loss=_base_.dist))))
