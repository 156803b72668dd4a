"""Refill the image caches of mix transforms when a run resumes."""
import logging

from mmengine.hooks import Hook
from mmengine.logging import print_log

from mmdist.datasets.mix_cache import (HISTORIES, cached_transforms,
                                       replay_plan, replay_window)
from mmdist.registry import HOOKS


@HOOKS.register_module()
class MixCacheReplayHook(Hook):
    """Before the first epoch of a resumed epoch-based run, give the train
    dataset the samples that each loading process loaded last, so that the
    caches of Mosaic and MixUp (mmyolo's ``use_cached=True``, mmdet's
    CachedMosaic and CachedMixUp) hold what they held in the uninterrupted
    run (:mod:`mmdist.datasets.mix_cache`). Nothing happens for a run that
    starts at epoch 0, a pipeline without such caches, or a dataset that
    :func:`mmdist.apis.make_resumable` did not wrap. ``tools/train.py``
    adds it.

    Args:
        history: ``'window'`` (the default): the last samples that can
            still be in a cache, exact for caches that drop their oldest
            entry; ``'full'``: every sample each process loaded, exact
            always.
    """

    priority = 'LOW'  # after the pipeline switches of before_train_epoch

    def __init__(self, history: str = 'window') -> None:
        if history not in HISTORIES:
            raise ValueError(f'history={history!r}: use one of {HISTORIES}')
        self.history = history
        self._checked = False

    def before_train_epoch(self, runner) -> None:
        if self._checked:
            return
        self._checked = True
        loader = runner.train_dataloader
        dataset = loader.dataset
        transforms = cached_transforms(dataset)
        if runner.epoch == 0 or not transforms or \
                not hasattr(dataset, 'replay'):
            return
        window = replay_window(transforms)
        plan = replay_plan(loader, runner.epoch, self.history, window)
        if not plan:
            return
        dataset.replay(plan)
        counts = sorted({len(samples) for samples in plan.values()})
        names = ', '.join(sorted({type(t).__name__ for t in transforms}))
        print_log(
            f'mmdist: the image caches of {names} are refilled with the '
            f'last {"/".join(map(str, counts))} samples that each of '
            f'{len(plan)} loading processes loaded before epoch '
            f'{runner.epoch + 1} (history={self.history!r})',
            logger='current', level=logging.INFO)
