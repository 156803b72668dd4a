# Beyond the paper: DIST from two teachers at once on Cityscapes,
# DeepLabV3 R101-D8 (80k, 80.2 mIoU) and SegFormer MiT-B5 (160k, 82.25
# mIoU), a CNN and a transformer, into DeepLabV3 R18-D8; the authors' DIST
# loss, weights and schedule otherwise (dist_deeplabv3_r18_cityscapes.py).
# One DIST term per teacher on the decode-head logits (weight 1 each, the
# student's 1/8 logits upsampled to SegFormer's 1/4 grid for its term, as
# in dist_deeplabv3_r18_segformer-mit-b5_cityscapes.py), and the auxiliary
# head distilled from DeepLabV3's auxiliary head alone (0.4; SegFormer has
# none). combine='ensemble' distils from the average of their
# probabilities instead (then resize=dict(to='student') for SegFormer).
_base_ = ['./dist_deeplabv3_r18_cityscapes.py']

segformer_b5 = dict(
    cfg_path='mmseg::segformer/'
    'segformer_mit-b5_8xb1-160k_cityscapes-1024x1024.py',
    ckpt=('https://download.openmmlab.com/mmsegmentation/v0.5/segformer/'
          'segformer_mit-b5_8x1_1024x1024_160k_cityscapes/'
          'segformer_mit-b5_8x1_1024x1024_160k_cityscapes_20211206_072934-'
          '87a052ec.pth'))
model = dict(
    teacher=None, teacher_ckpt=None,
    teachers=dict(
        deeplabv3_r101=dict(**_base_.seg_teacher_cfg,
                            ckpt=_base_.seg_teacher_ckpt),
        segformer_b5=segformer_b5),
    distiller=dict(logits=dict(
        _delete_=True,
        decode=dict(
            student='decode_head.conv_seg',
            teachers=dict(
                deeplabv3_r101=dict(module='decode_head.conv_seg'),
                segformer_b5=dict(module='decode_head.conv_seg',
                                  resize=dict(to='teacher'))),
            combine='per_teacher',
            loss=dict(**_base_.seg_dist, loss_weight=1.0)),
        aux=dict(
            student='auxiliary_head.conv_seg',
            teachers=dict(
                deeplabv3_r101=dict(module='auxiliary_head.conv_seg')),
            loss=dict(**_base_.seg_dist, loss_weight=0.4)))))
