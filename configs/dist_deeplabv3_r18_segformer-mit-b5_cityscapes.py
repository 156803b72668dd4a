# DIST from a stronger teacher of another architecture: SegFormer MiT-B5
# (160k, 82.25 mIoU) -> DeepLabV3 R18-D8 on Cityscapes, the authors' DIST
# loss, weight and schedule otherwise (dist_deeplabv3_r18_cityscapes.py).
# Not a paper row. SegFormer decodes at 1/4 of the input and DeepLabV3-D8
# at 1/8: the student's logits are upsampled bilinearly to the teacher's
# grid before DIST (logits.decode.resize). SegFormer has no auxiliary head,
# so only the decode head is distilled. The teacher sees the student's
# 512 x 1024 crops (it was trained on 1024 x 1024 ones); both normalise
# images alike.
_base_ = ['./dist_deeplabv3_r18_cityscapes.py']

model = dict(
    teacher=dict(
        _delete_=True,
        cfg_path='mmseg::segformer/'
        'segformer_mit-b5_8xb1-160k_cityscapes-1024x1024.py',
        pretrained=False),
    teacher_ckpt=(
        'https://download.openmmlab.com/mmsegmentation/v0.5/segformer/'
        'segformer_mit-b5_8x1_1024x1024_160k_cityscapes/'
        'segformer_mit-b5_8x1_1024x1024_160k_cityscapes_20211206_072934-'
        '87a052ec.pth'),
    distiller=dict(logits=dict(
        _delete_=True,
        decode=dict(
            student='decode_head.conv_seg', teacher='decode_head.conv_seg',
            loss=dict(**_base_.seg_dist, loss_weight=1.0),
            resize=dict(to='teacher', mode='bilinear', align_corners=False)))))
