# Beyond the paper: DIST from two stronger teachers at once on ImageNet,
# ResNet-50-SB (timm's "ResNet strikes back" A1, 80.12) and Swin-L
# (ImageNet-21k pre-trained, 224 px, 86.24), a CNN and a transformer, into
# ResNet-18 with the authors' strong recipe
# (dist_resnet18_resnet50-sb_in1k.py: CE + 2 x DIST, 450 epochs). The two
# DIST terms share the weight (1 each, 2 in all, as one teacher's); both
# teachers read the student's 224 px crops, normalised alike.
# combine='ensemble' distils from the average of their probabilities.
_base_ = ['./dist_resnet18_resnet50-sb_in1k.py']

model = dict(
    teacher=None, teacher_ckpt=None,
    teachers=dict(
        resnet50_sb=dict(**_base_.resnet50_sb_teacher.teacher,
                         ckpt=_base_.resnet50_sb_teacher.teacher_ckpt),
        swin_large=dict(**_base_.swin_large_teacher.teacher,
                        ckpt=_base_.swin_large_teacher.teacher_ckpt)),
    distiller=dict(logits=dict(
        _delete_=True,
        cls=dict(
            student='head.fc',
            teachers=dict(resnet50_sb=dict(module='head.fc', weight=0.5),
                          swin_large=dict(module='head.fc', weight=0.5)),
            combine='per_teacher',
            loss=_base_.cls_dist))))
