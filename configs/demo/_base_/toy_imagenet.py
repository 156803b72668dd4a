# What a CPU demands of the ImageNet configs, for the classification demo
# (tools/demo.py --task classification): the synthetic ImageNet-layout data
# of mmdist.datasets.make_imagenet (24 class folders, 32 x 32 images),
# batches of 32, a few hundred iterations, no ImageNet weights (nothing is
# downloaded). The names are their own so that a config inherits this file
# beside a stock one and assigns them (see ../resnet18_toy.py).
toy_data_root = 'work_dirs/demo_classification/data/imagenet/'
toy_classes = (
    'n01440764', 'n01443537', 'n01484850', 'n01491361', 'n01494475',
    'n01496331', 'n01498041', 'n01514668', 'n01514859', 'n01518878',
    'n01530575', 'n01531178', 'n01532829', 'n01534433', 'n01537544',
    'n01558993', 'n01560419', 'n01580077', 'n01582220', 'n01592084',
    'n01601694', 'n01608432', 'n01614925', 'n01616318')
toy_iters = 300

toy_train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomResizedCrop', scale=32, crop_ratio_range=(0.5, 1.0)),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PackInputs'),
]
toy_test_pipeline = [dict(type='LoadImageFromFile'), dict(type='PackInputs')]
toy_train_dataloader = dict(
    batch_size=32, num_workers=0, persistent_workers=False,
    dataset=dict(data_root=toy_data_root, metainfo=dict(classes=toy_classes),
                 pipeline=toy_train_pipeline))
toy_test_dataloader = dict(
    batch_size=64, num_workers=0, persistent_workers=False,
    dataset=dict(data_root=toy_data_root, metainfo=dict(classes=toy_classes),
                 pipeline=toy_test_pipeline))
toy_model = dict(head=dict(num_classes=len(toy_classes), topk=(1, )))
toy_data_preprocessor = dict(num_classes=len(toy_classes))
toy_evaluator = dict(type='Accuracy', topk=(1, ))
toy_param_scheduler = [
    dict(type='CosineAnnealingLR', eta_min=1e-4, begin=0, end=toy_iters,
         by_epoch=False)
]
toy_train_cfg = dict(
    _delete_=True, type='IterBasedTrainLoop', max_iters=toy_iters,
    val_interval=75)
toy_default_hooks = dict(
    logger=dict(interval=10, log_metric_by_epoch=False),
    checkpoint=dict(by_epoch=False, interval=toy_iters, max_keep_ckpts=1,
                    save_last=True))
toy_log_processor = dict(by_epoch=False)
