# What a CPU demands of mmyolo's RTMDet configs, for the YOLO demo
# (tools/demo.py --task yolo): mmdist.datasets.make_coco's shapes in COCO's
# layout, three classes (circle, square, triangle), 64 x 64 images, batches
# of 8, a few hundred iterations from scratch (no ImageNet weights: nothing
# is downloaded). mmyolo's test pipeline (its letterbox) and EMA are kept;
# what changes, and why:
# - training pipeline: the images at their own size and a flip, as the
#   detection demo's (its toy_coco.py), without mmyolo's Mosaic and MixUp:
#   on 64 x 64 images they shrink the shapes to a few pixels, and a teacher
#   trained 400 iterations with them reached 2% mAP;
# - model: three classes, score_thr 0.001 as the other demos test;
# - schedule: iterations, not 300 epochs; AdamW at 2e-3 (mmyolo's 0.004 is
#   for batches of 256; the teacher reached 19% mAP in 800 iterations at
#   2e-3, 9% in 400 at 1e-3 and 5% in 400 at 4e-3) with a 50-iteration
#   warm-up and a cosine decay, the pipeline switch of the last epochs left
#   out (the demo has no epochs).
# The names are their own, so that a config inherits this file beside a
# stock one and assigns them (see ../rtmdet_tiny_toy.py).
toy_data_root = 'work_dirs/demo_yolo/data/coco/'
toy_metainfo = dict(classes=('circle', 'square', 'triangle'))
toy_scale = (64, 64)
toy_iters = 800

toy_train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='mmdet.Resize', scale=toy_scale, keep_ratio=True),
    dict(type='mmdet.RandomFlip', prob=0.5),
    dict(type='mmdet.PackDetInputs')
]
toy_test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='YOLOv5KeepRatioResize', scale=toy_scale),
    dict(type='LetterResize', scale=toy_scale, allow_scale_up=False,
         pad_val=dict(img=114)),
    dict(type='LoadAnnotations', with_bbox=True, _scope_='mmdet'),
    dict(type='mmdet.PackDetInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                    'scale_factor', 'pad_param'))
]
toy_train_dataloader = dict(
    batch_size=8, num_workers=0, persistent_workers=False,
    sampler=dict(_delete_=True, type='InfiniteSampler', shuffle=True),
    dataset=dict(data_root=toy_data_root, metainfo=toy_metainfo,
                 filter_cfg=dict(filter_empty_gt=True, min_size=4),
                 pipeline=toy_train_pipeline))
toy_test_dataloader = dict(
    batch_size=8, num_workers=0, persistent_workers=False,
    dataset=dict(data_root=toy_data_root, metainfo=toy_metainfo,
                 batch_shapes_cfg=None, pipeline=toy_test_pipeline))
toy_evaluator = dict(
    ann_file=toy_data_root + 'annotations/instances_val2017.json')
# RTMDet-s's depth and width (the teacher's), over RTMDet-tiny's.
toy_teacher_model = dict(
    backbone=dict(deepen_factor=0.33, widen_factor=0.5),
    neck=dict(deepen_factor=0.33, widen_factor=0.5),
    bbox_head=dict(head_module=dict(widen_factor=0.5)))
toy_model = dict(
    backbone=dict(init_cfg=None),
    bbox_head=dict(head_module=dict(num_classes=3)),
    train_cfg=dict(assigner=dict(num_classes=3)),
    test_cfg=dict(score_thr=0.001))
toy_optim_wrapper = dict(optimizer=dict(lr=2e-3))
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
# mmyolo's EMA (its pipeline switch is by epoch).
toy_custom_hooks = [
    dict(type='EMAHook', ema_type='ExpMomentumEMA', momentum=0.0002,
         update_buffers=True, strict_load=False, priority=49)
]
