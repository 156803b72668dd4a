"""mmdist's registry nodes.

``MODELS``, ``HOOKS``, ``OPTIMIZERS`` and ``TASK_UTILS`` (recorders) are
children of MMEngine's root registries with the scope ``mmdist``, so
``type='mmdist.DISTLoss'``, ``type='mmdist.TeacherEvalHook'`` or
``type='mmdist.RMSpropTF'`` resolves from any OpenMMLab scope (mmrazor,
mmdet, mmseg, mmpretrain) without clashing with MMRazor's own
``DISTLoss``.
"""
from mmengine.registry import HOOKS as MMENGINE_HOOKS
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
