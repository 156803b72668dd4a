"""An iteration-based training loop that resumes by moving the sampler."""
import logging
import time
from typing import Dict, List, Optional, Tuple, Union

import torch
from mmengine.logging import print_log
from mmengine.runner.loops import (IterBasedTrainLoop,
                                   _InfiniteDataloaderIterator)
from torch import nn
from torch.utils.data import DataLoader

from mmdist.registry import LOOPS


def _sampler(loader: DataLoader):
    """The loader's sampler, also behind a batch sampler (mmdet's)."""
    return getattr(loader.batch_sampler, 'sampler', loader.sampler)


class _DataloaderPasses(_InfiniteDataloaderIterator):
    """MMEngine's endless iterator over a data loader with a finite sampler,
    without its 2 s pause at the end of each pass where no loading worker
    is shut down (no workers, or persistent ones).

    MMEngine pauses before every new pass, a workaround for a deadlock once
    seen while the old pass's workers were released (mmcv#306; its
    maintainers could not reproduce it, mmcv#1912). Where workers are
    started again the pause stays. The batches are the same either way.
    """

    @classmethod
    def adopt(cls, iterator: _InfiniteDataloaderIterator
              ) -> '_DataloaderPasses':
        """This class over ``iterator``'s state: its pass goes on, and
        its workers are not started again."""
        passes = cls.__new__(cls)
        passes.__dict__.update(iterator.__dict__)
        return passes

    def __next__(self):
        loader = self._dataloader
        if loader.num_workers > 0 and not loader.persistent_workers:
            return super().__next__()
        try:
            return next(self._iterator)
        except StopIteration:
            pass
        self._epoch += 1
        sampler = _sampler(loader)
        if hasattr(sampler, 'set_epoch'):
            sampler.set_epoch(self._epoch)
        self._iterator = iter(loader)
        return next(self._iterator)


@LOOPS.register_module()
class ResumableIterBasedTrainLoop(IterBasedTrainLoop):
    """MMEngine's IterBasedTrainLoop, resumed in seconds at any iteration.

    On ``--resume`` at iteration ``n``, MMEngine's loop draws ``n`` batches
    through the whole data pipeline and drops them. Here the sampler starts
    at the first sample not yet trained instead (``n`` times the batch
    size of this rank) and the data loader starts over from there, so the
    resumed run gets the indices, batches and order of the uninterrupted
    one at once. That needs a sampler with ``skip`` (mmdist's
    :class:`~mmdist.datasets.ResumableInfiniteSampler`); with another, or
    with ``fast_resume=False``, the batches are replayed as MMEngine does.

    Over a finite sampler (MMEngine's ``DefaultSampler``), a new pass over
    the data set starts without MMEngine's 2 s pause unless loading workers
    are started again (see :class:`_DataloaderPasses`).

    Args:
        fast_resume: Move the sampler (True) or replay the trained batches
            (False, MMEngine's behaviour).
        **kwargs: The arguments of IterBasedTrainLoop.
    """

    def __init__(self,
                 runner,
                 dataloader: Union[DataLoader, Dict],
                 max_iters: int,
                 val_begin: int = 1,
                 val_interval: int = 1000,
                 dynamic_intervals: Optional[List[Tuple[int, int]]] = None,
                 fast_resume: bool = True) -> None:
        super().__init__(runner, dataloader, max_iters, val_begin,
                         val_interval, dynamic_intervals)
        self.fast_resume = fast_resume
        self.dataloader_iterator = _DataloaderPasses.adopt(
            self.dataloader_iterator)

    def skip_trained(self) -> None:
        """Bring the data loader to the first batch not yet trained."""
        # The sampler and batch size, also behind a batch sampler.
        sampler = _sampler(self.dataloader)
        batch_size = getattr(self.dataloader.batch_sampler, 'batch_size',
                             None) or self.dataloader.batch_size
        if not (self.fast_resume and hasattr(sampler, 'skip')):
            why = ('fast_resume=False' if not self.fast_resume else
                   f'{type(sampler).__name__} cannot skip (mmdist.'
                   'ResumableInfiniteSampler can)')
            print_log(
                f'Replaying {self._iter} batches through the data pipeline '
                f'to skip what was trained ({why})', logger='current',
                level=logging.WARNING)
            for _ in range(self._iter):
                next(self.dataloader_iterator)
            return
        began = time.perf_counter()
        samples = self._iter * batch_size
        sampler.skip(samples)
        old = self.dataloader_iterator._iterator
        # The first iterator's workers prefetched from the old start.
        if hasattr(old, '_shutdown_workers') and not getattr(
                self.dataloader, 'persistent_workers', False):
            old._shutdown_workers()
        # A new iterator draws its workers' base seed from torch's global
        # generator, which the resumed random state (RandomStateHook) must
        # keep for training, as in the run that was not interrupted.
        with torch.random.fork_rng(devices=[]):
            self.dataloader_iterator = _DataloaderPasses(self.dataloader)
        print_log(
            f'Resuming at iteration {self._iter}: the sampler starts at '
            f'sample {samples} of this rank, nothing replayed '
            f'({time.perf_counter() - began:.2f} s)', logger='current')

    def run(self) -> nn.Module:
        """Train from the current iteration to ``max_iters``; return the
        model, as MMEngine's loop does."""
        self.runner.call_hook('before_train')
        # The whole run is one big epoch for the hooks, as in MMEngine.
        self.runner.call_hook('before_train_epoch')
        if self._iter > 0:
            self.skip_trained()
        while self._iter < self._max_iters and not self.stop_training:
            self.runner.model.train()
            self.run_iter(next(self.dataloader_iterator))
            self._decide_current_val_interval()
            if (self.runner.val_loop is not None
                    and self._iter >= self.val_begin
                    and (self._iter % self.val_interval == 0
                         or self._iter == self._max_iters)):
                self.runner.val_loop.run()
        self.runner.call_hook('after_train_epoch')
        self.runner.call_hook('after_train')
        return self.runner.model
