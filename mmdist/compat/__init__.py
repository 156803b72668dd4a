"""Make MMRazor 1.0, MMEngine 0.10, mmdeploy 1.3 and mmyolo 0.6 work on
current PyTorch, mmcv and albumentations.

Everything that mmdist changes in its dependencies lives here, one module
per dependency. :func:`apply` wires the fixes in once, when ``mmdist`` is
imported; each first checks that its problem is present, so where it is
not, nothing changes. Two are not applied at import: the export fix
(6), only around mmdeploy's export, and mmyolo's (7), which must be in
place before anything imports mmyolo.

1. ``import mmrazor.models`` fails on torch >= 2.1 (mmrazor issues 615,
   632): its quantization structures import fuser helpers that torch renamed
   (``reverse2`` -> ``_reverse2``, ``reverse_sequential_wrapper2`` ->
   ``_sequential_wrapper2``), use ``torch.ao.quantization.backend_config``'s
   ``utils`` submodule without importing it, and build every quantization
   backend config at import time with ``BackendPatternConfig`` methods that
   torch has since dropped. We alias the helpers, import the submodule and
   let the backend configs build on first use, so distillers, recorders,
   losses and algorithms import; quantization raises a clear error instead
   (:mod:`.mmrazor`).
2. torch >= 2.6 loads with ``weights_only=True`` by default and MMEngine
   0.10.7 calls ``torch.load`` without the argument, so its own training
   checkpoints (resume, ``load_from``, a teacher saved by a training run)
   fail on the ``HistoryBuffer`` and numpy scalars in their message hub
   (mmengine issue 1655). We add exactly those types to torch's safe
   globals, and for the ``getattr(HistoryBuffer, 'mean')`` calls that
   pickle writes for its statistics methods, a getattr that resolves
   nothing else: safe loading stays on for every file (:mod:`.mmengine`).
3. An mmcv compiled without CUDA kernels (``MMDIST_MMCV=full make
   install`` on a machine without nvcc) raises ``<op>_impl: implementation
   for device cuda:0 not found`` on GPU tensors. The ops that mmdist has in
   torch/torchvision (:mod:`mmdist.ops.ext`) run there on the devices mmcv
   was built without, with one warning per op in the log; where mmcv has
   CUDA kernels nothing is routed. ``MMDIST_TORCH_OPS=1`` routes them on
   every device. The default install has no compiled mmcv at all: its
   ``mmcv._ext`` is mmdist's stand-in (``_mmdist_mmcv_ext``), which is
   left alone here (:mod:`.mmcv_ops`).
4. MMEngine formats a config with yapf each time it logs it, dumps it and
   saves a checkpoint (about a second each for a distillation config, which
   holds two or more models): the formatting is remembered by its input
   text, so a run formats its config once. And ``default_hooks.<name>=None``
   removes any default hook, not only MMEngine's six; a dataloader's
   ``collate_fn`` inherited from another package's config (mmyolo's
   ``yolov5_collate``, given ``_scope_='mmyolo'`` by MMEngine) no longer
   gets ``_scope_`` as an argument (:mod:`.mmengine`).
5. MMRazor's algorithms turn ``inplace`` off in the student and the
   teacher (``module_inplace=False`` and ``teacher_module_inplace=False``,
   their defaults), so that a recorder on a module records what the module
   returned, not what a later in-place activation wrote over it. Their
   walk recurses into ``module._modules`` only where it is an
   ``OrderedDict``, and current torch keeps a plain dict there: it changed
   nothing. It walks every submodule again (:mod:`.mmrazor`).
6. mmdeploy 1.3.1 exports with ``torch.onnx.export`` as it was before
   torch 2.9 made the torch.export-based exporter the default: inside
   :func:`mmdeploy_export` only (``tools/deploy.py``), the TorchScript-based
   exporter (:mod:`.mmdeploy`).
7. mmyolo 0.6.0 asserts ``mmcv < 2.1.0`` when it is imported, and mmdet
   3.3 needs mmcv 2.1: ``import mmyolo`` stops. The start-up hook
   (``_mmdist_mmcv_ext``, imported by a ``.pth`` at interpreter start, so
   that mmyolo's own tools and mmdeploy, which import mmyolo before
   mmdist, are covered) runs mmyolo's ``__init__`` with the mmcv version
   it checks in its range, where mmcv is 2.1 and mmdet accepts it; nothing
   else of mmyolo changes.
8. albumentations 2 draws from generators of its own, seeded from the OS,
   where albumentations 1 drew from numpy's and Python's: mmdet's ``Albu``
   (YOLOv5's and YOLOv8's pipelines) augmented differently in two runs of
   one seed, and differently after an exact resume. Its pipeline is seeded
   from numpy's generator before each image (:mod:`.albumentations`).
"""
from typing import Dict

import _mmdist_mmcv_ext

from .albumentations import seed_albu_from_numpy
from .mmcv_ops import MMCVOpRouter, devices_to_route, route_mmcv_ops
from .mmdeploy import (NEWEST_TESTED_TORCH, check_torchscript_exporter,
                       mmdeploy_export, torchscript_exporter_available)
from .mmengine import (allow_mmengine_checkpoints,
                       allow_removing_any_default_hook,
                       allow_scoped_collate_fn,
                       history_buffer_getattr, memoize_config_formatting,
                       mmengine_checkpoint_globals)
from .mmrazor import (_BACKENDS, _FUSER_ALIASES, LazyBackendConfigs,
                      alias_renamed_fuser_helpers,
                      backend_configs_build_at_import,
                      defer_backend_configs, import_backend_config_utils,
                      inplace_walk_is_a_no_op, restore_inplace_guard)

__all__ = [
    'MMCVOpRouter', 'NEWEST_TESTED_TORCH', 'LazyBackendConfigs',
    'alias_renamed_fuser_helpers', 'allow_mmengine_checkpoints',
    'allow_removing_any_default_hook', 'allow_scoped_collate_fn', 'apply',
    'backend_configs_build_at_import', 'check_torchscript_exporter',
    'defer_backend_configs', 'devices_to_route', 'history_buffer_getattr',
    'import_backend_config_utils', 'inplace_walk_is_a_no_op',
    'memoize_config_formatting', 'mmdeploy_export',
    'mmengine_checkpoint_globals', 'restore_inplace_guard', 'route_mmcv_ops',
    'seed_albu_from_numpy',
    'torchscript_exporter_available', '_BACKENDS', '_FUSER_ALIASES'
]


def apply() -> Dict[str, object]:
    """Apply every fix whose problem is present; idempotent.

    Returns:
        What each fix did, for logging and tests.
    """
    return dict(
        fuser_aliases=alias_renamed_fuser_helpers(),
        backend_config_utils=import_backend_config_utils(),
        lazy_backend_configs=defer_backend_configs(),
        mmengine_checkpoints=allow_mmengine_checkpoints(),
        routed_mmcv_ops=route_mmcv_ops(),
        default_hooks_none=allow_removing_any_default_hook(),
        memoized_config_formatting=memoize_config_formatting(),
        scoped_collate_fn=allow_scoped_collate_fn(),
        inplace_guard=restore_inplace_guard(),
        mmyolo_version_check=_mmdist_mmcv_ext.install_mmyolo_finder(),
        albu_seeded=seed_albu_from_numpy(),
    )
