# What a CPU demands of the COCO configs, for the detection demo
# (tools/demo.py --task detection): mmdist.datasets.make_coco's shapes in
# COCO's layout as a data set of three classes (circle, square, triangle;
# any colour, 1 to 3 an image, 11 to 32 pixels), 64 x 64 images at their
# own size, batches of 8, a few hundred iterations from scratch (no
# ImageNet weights: nothing is downloaded, so no stage of the backbone is
# frozen and BN trains). What differs from mmdet's stock RetinaNet, and why:
# - model: a quarter of the FPN and head width (64 channels), two
#   convolutions per head branch instead of four, GN in the head (as
#   RetinaHead's norm_cfg allows; from scratch without it the focal loss
#   stays at its start for a hundred iterations and more), anchors half the
#   size (octave_base_scale=2) and score_thr 0.001 instead of 0.05 (as
#   mmdet's YOLOX and RTMDet configs test: COCO's mAP ranks up to 100 boxes
#   an image anyway, and a model early in training, whose scores are still
#   near the focal loss's prior of 0.01, gets a mAP too);
# - schedule: AdamW (lr 1e-3, fused: on a CPU its step is several times
#   cheaper) with a linear warm-up of 50 iterations and a cosine decay,
#   gradients clipped at 35, instead of SGD (lr 0.01) with steps: with the
#   same warm-up and GN head, SGD (lr 0.01 or 0.02) reached 8% mAP in 300
#   iterations of the student, where AdamW reached 22%.
# The names are their own so that a config inherits this file beside a
# stock one and assigns them (see ../retinanet_r18_toy.py).
toy_data_root = 'work_dirs/demo_detection/data/coco/'
toy_metainfo = dict(classes=('circle', 'square', 'triangle'))
toy_scale = (64, 64)
toy_iters = 300

toy_train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='Resize', scale=toy_scale, keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs')
]
toy_test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=toy_scale, keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='PackDetInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                    'scale_factor'))
]
toy_train_dataloader = dict(
    batch_size=8, num_workers=0, persistent_workers=False,
    sampler=dict(type='InfiniteSampler', shuffle=True), batch_sampler=None,
    dataset=dict(data_root=toy_data_root, metainfo=toy_metainfo,
                 filter_cfg=dict(filter_empty_gt=True, min_size=4),
                 pipeline=toy_train_pipeline))
toy_test_dataloader = dict(
    batch_size=8, num_workers=0, persistent_workers=False,
    dataset=dict(data_root=toy_data_root, metainfo=toy_metainfo,
                 pipeline=toy_test_pipeline))
toy_evaluator = dict(
    ann_file=toy_data_root + 'annotations/instances_val2017.json')
toy_model = dict(
    backbone=dict(frozen_stages=-1, norm_eval=False, init_cfg=None),
    neck=dict(out_channels=64),
    bbox_head=dict(num_classes=3, in_channels=64, feat_channels=64,
                   stacked_convs=2,
                   norm_cfg=dict(type='GN', num_groups=16, requires_grad=True),
                   anchor_generator=dict(octave_base_scale=2)),
    test_cfg=dict(score_thr=0.001))
toy_optim_wrapper = dict(
    optimizer=dict(_delete_=True, type='AdamW', lr=1e-3, weight_decay=0.05,
                   fused=True),
    clip_grad=dict(max_norm=35, norm_type=2))
# The cosine schedule comes first: tools/demo.py sets param_scheduler.0.end
# to the iterations it runs. The warm-up multiplies it.
toy_param_scheduler = [
    dict(type='CosineAnnealingLR', eta_min=1e-5, begin=0, end=toy_iters,
         by_epoch=False),
    dict(type='LinearLR', start_factor=0.01, begin=0, end=50, by_epoch=False)
]
toy_train_cfg = dict(
    _delete_=True, type='IterBasedTrainLoop', max_iters=toy_iters,
    val_interval=75)
toy_default_hooks = dict(
    logger=dict(interval=10, log_metric_by_epoch=False),
    checkpoint=dict(by_epoch=False, interval=toy_iters, max_keep_ckpts=1,
                    save_last=True))
toy_log_processor = dict(by_epoch=False)
