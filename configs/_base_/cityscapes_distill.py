# DIST from DeepLabV3 R101-D8 to an R18-D8 student on Cityscapes, as the
# authors. A student config inherits this file beside mmseg's stock student
# config; the names here are their own, as a config may not inherit one key
# from two files, and the student config assigns them:
#   model = dict(_delete_=True, architecture=_base_.model,
#                **_base_.seg_distill_model)
_base_ = ['./mmdist_hooks.py']

# Teacher: mmseg's stock DeepLabV3 R101-D8 (80k, 80.2 mIoU; the 40k one,
# 77.1 mIoU, is the other stock choice). Logits of the decode head and of
# the auxiliary FCN head are recorded at the heads' own resolution (output
# stride 8).
seg_teacher_cfg = dict(
    cfg_path='mmseg::deeplabv3/deeplabv3_r101-d8_4xb2-80k_cityscapes-'
    '512x1024.py',
    pretrained=False)
seg_teacher_ckpt = (
    'https://download.openmmlab.com/mmsegmentation/v0.5/deeplabv3/'
    'deeplabv3_r101-d8_512x1024_80k_cityscapes/'
    'deeplabv3_r101-d8_512x1024_80k_cityscapes_20200606_113503-9e428899.pth')
# As the authors (hunto/DIST_KD, segmentation/): softmax, beta = gamma =
# tau = 1, every pixel of the logits one row, pixels labelled 255 included;
# decode head weight 1, auxiliary head 0.4.
seg_dist = dict(type='mmdist.DISTLoss', activation='softmax', beta=1.0,
                gamma=1.0, tau=1.0, log_terms=True)
seg_distiller = dict(
    type='mmdist.LogitDistiller',
    logits=dict(
        decode=dict(student='decode_head.conv_seg',
                    teacher='decode_head.conv_seg',
                    loss=dict(**seg_dist, loss_weight=1.0)),
        aux=dict(student='auxiliary_head.conv_seg',
                 teacher='auxiliary_head.conv_seg',
                 loss=dict(**seg_dist, loss_weight=0.4))))
# The KD baselines swap in classic KD (softmax KL per pixel, tau = 1, same
# weights, every pixel): model = dict(distiller=dict(logits=_base_.seg_kd)).
seg_kd_loss = dict(_delete_=True, type='mmdist.KDLoss', activation='softmax',
                   tau=1.0)
seg_kd = dict(
    decode=dict(loss=dict(**seg_kd_loss, loss_weight=1.0)),
    aux=dict(loss=dict(**seg_kd_loss, loss_weight=0.4)))
# Not the authors' method, an option: leave the pixels labelled 255 out of
# the DIST or KD losses. The ground truth is recorded where the student's
# heads stack it and resized to the logits by nearest. In a config that
# inherits a Cityscapes DIST or KD config, one line:
#   model = dict(distiller=_base_.seg_leave_out_ignored)
seg_ignored = dict(inputs=dict(gt_labels=dict(recorder='gt')),
                   loss=dict(ignore_index=255))
seg_leave_out_ignored = dict(
    student_recorders=dict(
        gt=dict(type='MethodOutputs',
                source='mmseg.models.decode_heads.decode_head.'
                'BaseDecodeHead._stack_batch_gt')),
    logits=dict(decode=seg_ignored, aux=seg_ignored))
seg_distill_model = dict(
    _scope_='mmrazor',
    type='mmdist.SegTeacherDistill',
    teacher=seg_teacher_cfg,
    teacher_ckpt=seg_teacher_ckpt,
    distiller=seg_distiller)

# The authors' schedule: 512x1024 crops (the stock ones), 40k iterations,
# 8 GPUs x 2 images, SGD lr 0.02, momentum 0.9, weight decay 5e-4, poly
# decay with power 0.9 down to 1e-4.
seg_train_dataloader = dict(batch_size=2)
seg_optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=0.02, momentum=0.9, weight_decay=5e-4),
    clip_grad=None)
seg_param_scheduler = [
    dict(type='PolyLR', eta_min=1e-4, power=0.9, begin=0, end=40000,
         by_epoch=False)
]
seg_train_cfg = dict(
    type='IterBasedTrainLoop', max_iters=40000, val_interval=4000)
