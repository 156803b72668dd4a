# DIST on the decode-head logits, every pixel: SegFormer MiT-B2 (160k,
# 81.08 mIoU) -> MiT-B0, the student's stock 160k schedule (1024 x 1024
# crops, AdamW). SegFormer has no auxiliary head.
_base_ = [
    'mmseg::segformer/segformer_mit-b0_8xb1-160k_cityscapes-1024x1024.py',
    './_base_/logit_distill.py'
]
custom_imports = dict(imports=['mmdist'], allow_failed_imports=False)

model = dict(
    _delete_=True, architecture=_base_.model, **_base_.logit_distill_model)
model.update(
    type='mmdist.SegTeacherDistill',
    teacher=dict(cfg_path='mmseg::segformer/'
                 'segformer_mit-b2_8xb1-160k_cityscapes-1024x1024.py'),
    teacher_ckpt=(
        'https://download.openmmlab.com/mmsegmentation/v0.5/segformer/'
        'segformer_mit-b2_8x1_1024x1024_160k_cityscapes/'
        'segformer_mit-b2_8x1_1024x1024_160k_cityscapes_20211207_134205-'
        '6096669a.pth'))
model['distiller']['logits']['cls'].update(
    student='decode_head.conv_seg', teacher='decode_head.conv_seg',
    loss=dict(activation='softmax'))
default_hooks = _base_.mmdist_default_hooks
