# What a CPU demands of the Cityscapes configs, for the embedded demo
# (tools/demo.py): the synthetic Cityscapes-layout data of
# mmdist.datasets.make_cityscapes at 64 x 128, batches of 4, 100 to 150
# iterations, no ImageNet weights (nothing is downloaded). The names are
# their own so that a config inherits this file beside a stock one and
# assigns them (see ../deeplabv3_r18_toy.py).
toy_data_root = 'work_dirs/demo/data/cityscapes/'
toy_crop = (64, 128)  # (h, w)
toy_scale = (128, 64)  # (w, h): the whole generated image
toy_iters = 150

toy_train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='RandomResize', scale=toy_scale, ratio_range=(0.75, 1.5),
         keep_ratio=True),
    dict(type='RandomCrop', crop_size=toy_crop, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackSegInputs')
]
toy_test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=toy_scale, keep_ratio=True),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs')
]
toy_train_dataloader = dict(
    batch_size=4, num_workers=0, persistent_workers=False,
    dataset=dict(data_root=toy_data_root, pipeline=toy_train_pipeline))
toy_test_dataloader = dict(
    num_workers=0, persistent_workers=False,
    dataset=dict(data_root=toy_data_root, pipeline=toy_test_pipeline))
toy_data_preprocessor = dict(size=toy_crop)
toy_optim_wrapper = dict(
    optimizer=dict(type='SGD', lr=0.01, momentum=0.9, weight_decay=5e-4))
toy_param_scheduler = [
    dict(type='PolyLR', eta_min=1e-4, power=0.9, begin=0, end=toy_iters,
         by_epoch=False)
]
toy_train_cfg = dict(
    type='IterBasedTrainLoop', max_iters=toy_iters, val_interval=50)
toy_default_hooks = dict(
    logger=dict(interval=10),
    checkpoint=dict(interval=toy_iters, max_keep_ckpts=1, save_last=True),
    visualization=dict(draw=False))
