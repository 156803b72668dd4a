"""The student that tools/deploy.py exports: its config, task and weights.

A distillation config holds the student as ``model.architecture`` beside
its teachers; a stock config (mmdet, mmseg, mmpretrain, mmyolo) is the
student itself. Either way the exported model is the student's own config:
its model, its test data and pipeline, its metric, nothing of the teachers.
"""
import copy
import os.path as osp
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

import torch
from mmengine.config import Config, ConfigDict
from mmengine.registry import init_default_scope
from torch import nn

from mmdist.models.algorithms.teacher_utils import (check_state_dict_fits,
                                                    model_task,
                                                    read_state_dict,
                                                    teacher_config)

# mmdist's deploy configs (configs/deploy/, in a wheel mmdist/.mim/...), by
# the task of the model they export.
DEPLOY_CONFIGS: Dict[str, str] = {
    'detection': 'detection_onnxruntime_dynamic.py',
    'yolo': 'yolo_onnxruntime_dynamic.py',
    'segmentation': 'segmentation_onnxruntime_dynamic.py',
    'classification': 'classification_onnxruntime_dynamic.py',
}
STUDENT_PREFIX = 'architecture.'


@dataclass
class Student:
    """What is exported: the student's config, model, task and weights."""
    config: str
    cfg: Config  # the distillation config, or the stock one
    student_cfg: Config
    model: nn.Module
    task: str
    deploy_cfg: Config
    state_dict: Dict[str, torch.Tensor]


def deploy_config_dir() -> str:
    """configs/deploy of this mmdist (the checkout's or the wheel's)."""
    import mmdist
    return osp.join(osp.dirname(mmdist.__file__), '.mim', 'configs',
                    'deploy')


def is_distillation(cfg: Config) -> bool:
    """Whether ``cfg`` is a distillation config (a student and teachers)."""
    model = cfg.get('model')
    return isinstance(model, dict) and 'architecture' in model


def _is_distillation_hook(hook: object) -> bool:
    kind = str((hook or {}).get('type', '')) if isinstance(hook, dict) \
        else ''
    return kind.startswith(('mmdist.', 'mmrazor.'))


def student_config(cfg: Config) -> Config:
    """The config of the student alone: ``cfg`` itself for a stock config;
    for a distillation config, its ``model.architecture`` (a model dict, or
    ``dict(cfg_path=...)``) as the model, with the config's data, pipeline
    and metric, and without the distillation's hooks and imports. The test
    pipeline is the test dataloader's, which mmdeploy reads as
    ``test_pipeline``."""
    cfg = copy.deepcopy(cfg)
    if is_distillation(cfg):
        student = cfg.model.architecture
        if 'cfg_path' in student:
            own = teacher_config(student)
            student = own.model
            cfg.default_scope = own.get('default_scope',
                                        cfg.get('default_scope'))
        cfg.model = student
        for key in ('custom_imports', 'model_wrapper_cfg'):
            cfg.pop(key, None)
        hooks = cfg.get('default_hooks') or {}
        for name in [n for n, h in hooks.items() if _is_distillation_hook(h)]:
            hooks.pop(name)
        if cfg.get('custom_hooks'):
            cfg.custom_hooks = [h for h in cfg.custom_hooks
                                if not _is_distillation_hook(h)]
    pipeline = ((cfg.get('test_dataloader') or {}).get('dataset')
                or {}).get('pipeline')
    if pipeline:
        cfg.test_pipeline = copy.deepcopy(pipeline)
    cfg.load_from, cfg.resume = None, False
    return cfg


def teacher_configs(cfg: Config
                    ) -> List[Tuple[str, ConfigDict, Optional[str],
                                    Optional[str]]]:
    """(name, model config, scope, checkpoint) of each teacher of a
    distillation config."""
    model = cfg.get('model') or {}
    specs = [('teacher', model.get('teacher'), model.get('teacher_ckpt'))]
    specs += [(name, spec, spec.get('ckpt')) for name, spec in
              (model.get('teachers') or {}).items()]
    found = []
    for name, spec, ckpt in specs:
        if not isinstance(spec, dict):
            continue
        spec = {k: v for k, v in spec.items()
                if k not in ('ckpt', 'precision')}
        if 'cfg_path' in spec:
            own = teacher_config(spec)
            model_cfg = own.model
            # mmpretrain keeps the preprocessor beside the model.
            if own.get('data_preprocessor') and \
                    'data_preprocessor' not in model_cfg:
                model_cfg.data_preprocessor = own.data_preprocessor
            found.append((name, model_cfg, own.get('default_scope'), ckpt))
        else:
            found.append((name, ConfigDict(spec), cfg.get('default_scope'),
                          ckpt))
    return found


def build_model(model_cfg: dict, scope: Optional[str]) -> nn.Module:
    """An OpenMMLab model from its config, in its scope, on the CPU."""
    from mmengine.registry import MODELS
    if scope:
        init_default_scope(scope)
    model = MODELS.build(copy.deepcopy(model_cfg))
    return model.eval()


def deploy_task(model: nn.Module, cfg: Config) -> Optional[str]:
    """The key of :data:`DEPLOY_CONFIGS` for ``model``, or None where
    mmdist ships no deploy config for it (say, a model with masks)."""
    if cfg.get('default_scope') == 'mmyolo':
        return 'yolo'
    task = model_task(model)
    if task == 'detection' and (getattr(model, 'with_mask', False) or getattr(
            getattr(model, 'roi_head', None), 'with_mask', False)):
        return None  # instance segmentation: masks need other outputs
    return task


def what_it_is(model: nn.Module) -> str:
    """A few words for a model without a deploy config."""
    task = model_task(model)
    if task == 'detection':
        what = 'a detector with a mask head'
    else:
        what = task or 'not an mmdet, mmseg, mmpretrain or mmyolo model'
    return f'{type(model).__name__} ({what})'


def student_weights(model: nn.Module, checkpoint: str
                    ) -> Dict[str, torch.Tensor]:
    """The student's weights from a distillation checkpoint (its
    ``architecture.`` keys) or a checkpoint of the student alone, checked
    against ``model``.

    Raises:
        ValueError: A file that is not a checkpoint, or whose weights do not
            fit the student, naming what differs.
    """
    state_dict = read_state_dict(checkpoint, 'student', 'CHECKPOINT')
    if any(k.startswith(STUDENT_PREFIX) for k in state_dict):
        state_dict = {k[len(STUDENT_PREFIX):]: v
                      for k, v in state_dict.items()
                      if k.startswith(STUDENT_PREFIX)}
    check_state_dict_fits(
        model, state_dict, checkpoint, 'student',
        'give the checkpoint of this config: a distillation checkpoint of '
        'this distillation config, or a checkpoint of the student\'s own '
        'config (tools/convert_student.py writes one)')
    return state_dict
