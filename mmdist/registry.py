"""mmdist's registry nodes.

``MODELS``, ``HOOKS``, ``OPTIMIZERS``, ``TASK_UTILS`` (recorders),
``DATASETS``, ``DATA_SAMPLERS``, ``LOOPS`` and ``MODEL_WRAPPERS`` are
children of MMEngine's root registries with the scope ``mmdist``, so
``type='mmdist.DISTLoss'``, ``type='mmdist.TeacherEvalHook'`` or
``type='mmdist.RMSpropTF'`` resolves from any OpenMMLab scope (mmrazor,
mmdet, mmseg, mmpretrain) without clashing with MMRazor's own
``DISTLoss``.
"""
from mmengine.registry import DATA_SAMPLERS as MMENGINE_DATA_SAMPLERS
from mmengine.registry import DATASETS as MMENGINE_DATASETS
from mmengine.registry import HOOKS as MMENGINE_HOOKS
from mmengine.registry import LOOPS as MMENGINE_LOOPS
from mmengine.registry import MODEL_WRAPPERS as MMENGINE_MODEL_WRAPPERS
from mmengine.registry import MODELS as MMENGINE_MODELS
from mmengine.registry import OPTIMIZERS as MMENGINE_OPTIMIZERS
from mmengine.registry import TASK_UTILS as MMENGINE_TASK_UTILS
from mmengine.registry import Registry

MODELS = Registry(
    'model', parent=MMENGINE_MODELS, scope='mmdist',
    locations=['mmdist.models'])
HOOKS = Registry(
    'hook', parent=MMENGINE_HOOKS, scope='mmdist',
    locations=['mmdist.engine'])
OPTIMIZERS = Registry(
    'optimizer', parent=MMENGINE_OPTIMIZERS, scope='mmdist',
    locations=['mmdist.engine'])
TASK_UTILS = Registry(
    'task util', parent=MMENGINE_TASK_UTILS, scope='mmdist',
    locations=['mmdist.models'])
DATASETS = Registry(
    'dataset', parent=MMENGINE_DATASETS, scope='mmdist',
    locations=['mmdist.datasets'])
DATA_SAMPLERS = Registry(
    'data sampler', parent=MMENGINE_DATA_SAMPLERS, scope='mmdist',
    locations=['mmdist.datasets'])
LOOPS = Registry(
    'loop', parent=MMENGINE_LOOPS, scope='mmdist',
    locations=['mmdist.engine'])
MODEL_WRAPPERS = Registry(
    'model wrapper', parent=MMENGINE_MODEL_WRAPPERS, scope='mmdist',
    locations=['mmdist.models'])
