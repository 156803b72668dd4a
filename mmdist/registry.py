"""mmdist's registry nodes.

``MODELS`` is a child of MMEngine's root model registry with the scope
``mmdist``, so ``type='mmdist.DISTLoss'`` resolves from any OpenMMLab scope
(mmrazor, mmdet, mmseg) without clashing with MMRazor's own ``DISTLoss``.
"""
from mmengine.registry import MODELS as MMENGINE_MODELS
from mmengine.registry import Registry

MODELS = Registry(
    'model', parent=MMENGINE_MODELS, scope='mmdist',
    locations=['mmdist.models'])
