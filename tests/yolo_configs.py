"""mmyolo's configs made small enough for CPU tests: every image size of
their pipelines, batch shapes and batch augments brought down to ``size``,
two images a batch, a few epochs on a generated COCO-layout data set, the
pipeline switch and the stop of distillation moved into them."""
import copy
from typing import List

from mmengine.config import Config

# mmyolo's pipeline steps that carry an image size, and where.
_SIZE_KEYS = ('img_scale', 'crop_size')


def _shrink_pipeline(pipeline: List[dict], size: int) -> None:
    square = (size, size)
    for step in pipeline:
        kind = str(step.get('type', '')).split('.')[-1]
        for key in _SIZE_KEYS:
            if key in step:
                step[key] = square
        if 'scale' in step:
            step['scale'] = (2 * size, 2 * size) if kind == 'RandomResize' \
                else square
        if kind == 'Pad' and 'size' in step:
            step['size'] = square
        if 'border' in step:
            step['border'] = (-size // 2, -size // 2)
        for key in ('pre_transform', ):
            if step.get(key):
                _shrink_pipeline(step[key], size)


def _no_pretrained_backbone(model: dict) -> None:
    """No ImageNet weights for a model's backbone (nothing is downloaded):
    its own ``init_cfg``, or an override of a teacher's ``cfg_path``."""
    if 'cfg_path' in model:
        model['backbone'] = dict(model.get('backbone') or {}, init_cfg=None)
    elif model.get('backbone') is not None:
        model['backbone']['init_cfg'] = None


def _resolved(model: dict) -> dict:
    """A student given by ``cfg_path`` as its config's model (MMRazor builds
    it with mmengine.hub.get_model, which takes no override of its
    backbone's weights)."""
    if 'cfg_path' not in model:
        return model
    from mmengine.hub import get_config
    scope = model['cfg_path'].split('::')[0]
    return dict(get_config(model['cfg_path']).model, _scope_=scope)


def small_yolo_config(path: str, data_root: str, size: int = 128,
                      epochs: int = 2, train_images: int = 4) -> Config:
    """The config at ``path`` (an mmyolo config, or a distillation config
    of one) on ``data_root``'s COCO layout at ``size`` pixels: ``epochs``
    epochs of ``train_images / 2`` iterations, distillation stopped and the
    pipeline switched for the last epoch."""
    cfg = Config.fromfile(path)
    root = data_root.rstrip('/') + '/'
    ann = root + 'annotations/instances_val2017.json'
    for name in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        loader = cfg[name]
        loader.update(num_workers=0, persistent_workers=False,
                      batch_size=2 if name == 'train_dataloader' else 1)
        dataset = loader.dataset
        dataset.data_root = root
        _shrink_pipeline(dataset.pipeline, size)
        if dataset.get('batch_shapes_cfg'):
            dataset.batch_shapes_cfg.update(img_size=size, batch_size=1)
        if name == 'train_dataloader':
            dataset.filter_cfg = dict(filter_empty_gt=False, min_size=4)
            dataset.indices = train_images
    for name in ('val_evaluator', 'test_evaluator'):
        cfg[name].ann_file = ann
    if 'architecture' in cfg.model:
        cfg.model.architecture = _resolved(cfg.model.architecture)
    model = cfg.model.get('architecture', cfg.model)
    _no_pretrained_backbone(model)
    if cfg.model.get('teacher') is not None:
        _no_pretrained_backbone(cfg.model.teacher)
    for preprocessor in (model.get('data_preprocessor') or {},
                         cfg.get('data_preprocessor') or {}):
        for augment in preprocessor.get('batch_augments') or []:
            if 'random_size_range' in augment:
                augment['random_size_range'] = (size - 32, size + 32)
    cfg.train_cfg.update(max_epochs=epochs, val_interval=epochs,
                         dynamic_intervals=None)
    for hook in cfg.get('custom_hooks') or []:
        kind = str(hook['type']).split('.')[-1]
        if kind == 'PipelineSwitchHook':
            hook['switch_epoch'] = epochs - 1
            _shrink_pipeline(hook['switch_pipeline'], size)
        elif kind == 'StopDistillHook':
            hook['stop_epoch'] = epochs - 1
        elif kind == 'YOLOXModeSwitchHook':
            hook['num_last_epochs'] = 1
            hook['new_train_pipeline'] = copy.deepcopy(
                hook.get('new_train_pipeline'))
            _shrink_pipeline(hook['new_train_pipeline'] or [], size)
    cfg.default_hooks.logger = dict(type='LoggerHook', interval=1)
    cfg.default_hooks.checkpoint.update(interval=1, max_keep_ckpts=3)
    cfg.load_from = None
    return cfg
