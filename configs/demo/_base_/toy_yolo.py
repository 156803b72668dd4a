# What a CPU demands of mmyolo's RTMDet configs, for the YOLO demo
# (tools/demo.py --task yolo): mmdist.datasets.make_coco's shapes in COCO's
# layout, three classes (circle, square, triangle), 64 x 64 images, batches
# of 8, a few hundred iterations from scratch (no ImageNet weights: nothing
# is downloaded). mmyolo's pipeline is kept, its sizes brought to the
# images' (Mosaic and MixUp with their image caches, the random resize and
# crop, HSV, flip, pad; the letterbox at test time) and its EMA; what
# changes, and why:
# - model: three classes, score_thr 0.001 as the other demos test;
# - schedule: iterations, not 300 epochs; AdamW at mmyolo's lr 0.004 (its
#   batch is 256: from scratch on 8 images a step, 1e-3 learnt faster)
#   with a 50-iteration warm-up and a cosine decay, the pipeline switch of
#   the last epochs left out (the demo has no epochs).
# The names are their own, so that a config inherits this file beside a
# stock one and assigns them (see ../rtmdet_tiny_toy.py).
toy_data_root = 'work_dirs/demo_yolo/data/coco/'
toy_metainfo = dict(classes=('circle', 'square', 'triangle'))
toy_scale = (64, 64)
toy_iters = 300

toy_train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='Mosaic', img_scale=toy_scale, use_cached=True,
         max_cached_images=20, random_pop=False, pad_val=114.0),
    dict(type='mmdet.RandomResize', scale=(128, 128), ratio_range=(0.5, 2.0),
         resize_type='mmdet.Resize', keep_ratio=True),
    dict(type='mmdet.RandomCrop', crop_size=toy_scale),
    dict(type='mmdet.YOLOXHSVRandomAug'),
    dict(type='mmdet.RandomFlip', prob=0.5),
    dict(type='mmdet.Pad', size=toy_scale, pad_val=dict(img=(114, 114, 114))),
    dict(type='YOLOv5MixUp', use_cached=True, random_pop=False,
         max_cached_images=10, prob=0.5),
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
toy_optim_wrapper = dict(optimizer=dict(lr=1e-3))
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
