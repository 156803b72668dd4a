# DIST on ImageNet through mmpretrain, as the authors compute it
# (hunto/image_classification_sota, configs/strategies/distill/
# resnet_dist.yaml). A student config inherits mmpretrain's stock student
# config and this file, then assigns:
#   model = dict(_delete_=True, architecture=_base_.model,
#                **_base_.cls_distill_model, **_base_.<teacher>)
# The teacher reads the student's preprocessed batch (mixed by the
# student's batch augments where it has any) and must normalise alike;
# mmdist checks it when the model is built.
_base_ = ['./mmdist_hooks.py']

# CE + 2 x DIST on the classifier's logits: softmax, tau = beta = gamma = 1,
# inter-class relation per sample, intra-class relation per class over the
# samples of one GPU's batch (not gathered), tau^2 on both.
cls_dist = dict(type='mmdist.DISTLoss', activation='softmax', beta=1.0,
                gamma=1.0, tau=1.0, loss_weight=2.0, log_terms=True)
cls_distill_model = dict(
    _scope_='mmrazor',
    type='mmdist.FrozenTeacherDistill',
    distiller=dict(
        type='mmdist.LogitDistiller',
        logits=dict(cls=dict(student='head.fc', teacher='head.fc',
                             loss=cls_dist))))
# The KD baseline (configs/strategies/distill/resnet_kdt4.yaml):
# 0.9 x CE + 1.0 x tau^2 KL(teacher || student) at tau = 4, averaged over
# the batch. A DIST config becomes KD with
#   model = dict(architecture=dict(head=dict(loss=dict(loss_weight=0.9))),
#                distiller=dict(logits=_base_.cls_kd))
cls_kd = dict(cls=dict(loss=dict(_delete_=True, type='mmdist.KDLoss',
                                 activation='softmax', tau=4.0,
                                 loss_weight=1.0)))

# Teachers: mmpretrain's stock configs and model-zoo weights (top-1 on
# ImageNet val in mmpretrain's metafiles). The authors' ResNet teachers are
# torchvision's (73.31 / 76.13 / 77.37 / 78.31).
_zoo = 'https://download.openmmlab.com/mmclassification/v0/'
resnet34_teacher = dict(  # 73.62
    teacher=dict(cfg_path='mmpretrain::resnet/resnet34_8xb32_in1k.py'),
    teacher_ckpt=_zoo + 'resnet/resnet34_8xb32_in1k_20210831-f257d4e6.pth')
resnet50_teacher = dict(  # 76.55
    teacher=dict(cfg_path='mmpretrain::resnet/resnet50_8xb32_in1k.py'),
    teacher_ckpt=_zoo + 'resnet/resnet50_8xb32_in1k_20210831-ea4938fc.pth')
resnet101_teacher = dict(  # 77.97
    teacher=dict(cfg_path='mmpretrain::resnet/resnet101_8xb32_in1k.py'),
    teacher_ckpt=_zoo + 'resnet/resnet101_8xb32_in1k_20210831-539c63f8.pth')
resnet152_teacher = dict(  # 78.48
    teacher=dict(cfg_path='mmpretrain::resnet/resnet152_8xb32_in1k.py'),
    teacher_ckpt=_zoo + 'resnet/resnet152_8xb32_in1k_20210901-4d7582fa.pth')
# ResNet-50-SB: timm's "ResNet strikes back" A1 model (80.12), the paper's
# strong-recipe teacher. Its SyncBN runs as BN in the teacher's eval mode.
resnet50_sb_teacher = dict(
    teacher=dict(
        cfg_path='mmpretrain::resnet/resnet50_8xb256-rsb-a1-600e_in1k.py'),
    teacher_ckpt=_zoo + 'resnet/'
    'resnet50_8xb256-rsb-a1-600e_in1k_20211228-20e21305.pth')
# Swin-L, ImageNet-21k pre-trained, fine-tuned on ImageNet-1k at 224 px
# (86.24).
swin_large_teacher = dict(
    teacher=dict(cfg_path='mmpretrain::swin_transformer/'
                 'swin-large_16xb64_in1k.py'),
    teacher_ckpt=_zoo + 'swin-transformer/convert/'
    'swin_large_patch4_window7_224_22kto1k-5f0996db.pth')

# The authors' baseline recipe, where it differs from mmpretrain's stock
# ResNet one (100 epochs, 8 x 32 images, SGD lr 0.1, momentum 0.9, lr x 0.1
# at epochs 30, 60 and 90, RandomResizedCrop + flip, plain CE): Nesterov
# momentum, and no weight decay on biases and norm layers (every 1-D
# parameter).
in1k_baseline_optim_wrapper = dict(
    optimizer=dict(type='SGD', lr=0.1, momentum=0.9, weight_decay=1e-4,
                   nesterov=True),
    paramwise_cfg=dict(norm_decay_mult=0.0, bias_decay_mult=0.0))
