"""Loading that does not depend on history: samplers that start anywhere in
a rank's stream and seed every sample from its place in it.

A resumed run should load exactly what the uninterrupted run would have.
Advancing the sampler instead of replaying the data pipeline gives the same
sample indices in the same batches, but with data-loader workers the random
draws of the augmentation still differ: a worker's generators move on with
every sample it loads, so they depend on which samples it loaded before.
Here the sampler yields indices that carry a seed (:class:`SeededIndex`), a
function of the run's seed, the rank and the sample's position in the
rank's stream, and :class:`PositionSeededDataset` seeds Python's, NumPy's
and torch's generators from it before the pipeline runs. Loading a sample
is then a pure function of the seed and its position (not of its index
alone: then each epoch would draw the same augmentation), whatever the
worker count and whatever came before. Transforms that draw other samples
through these generators (mmdet's Mosaic and MixUp pick them with
``random``) are covered. Transforms that keep a cache of recent images
(mmyolo's cached Mosaic and MixUp, mmdet's CachedMosaic and CachedMixUp)
depend on what their process loaded before: a resumed run loads those
samples again first (:mod:`mmdist.datasets.mix_cache`).
"""
import contextlib
import itertools
import random
from typing import Iterator, Optional, Sized, Union

import numpy as np
import torch
from mmengine.dataset import DefaultSampler, InfiniteSampler
from torch.utils.data import get_worker_info

from mmdist.registry import DATA_SAMPLERS, DATASETS

_MASK64 = (1 << 64) - 1


def sample_seed(seed: int, rank: int, position: int) -> int:
    """A 63-bit seed for the sample at ``position`` of ``rank``'s stream.

    The three numbers are mixed with SplitMix64 steps, so neighbouring
    positions (and ranks) get unrelated seeds.
    """
    state = 0
    for value in (seed, rank, position):
        state = (state + (value & _MASK64) + 0x9E3779B97F4A7C15) & _MASK64
        z = state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
        state = z ^ (z >> 31)
    return state >> 1


class SeededIndex(int):
    """A sample index (an int: batch samplers such as mmdet's
    AspectRatioBatchSampler read it as one) with the seed to load it
    under."""

    seed: int

    def __new__(cls, index: int, seed: int) -> 'SeededIndex':
        self = super().__new__(cls, index)
        self.seed = seed
        return self

    def __reduce__(self):
        return SeededIndex, (int(self), self.seed)


@contextlib.contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Seed Python's, NumPy's and torch's global generators from ``seed``.

    In the main process (``num_workers=0``) their states are put back
    afterwards, so that loading draws nothing from the training's own
    stream (dropout, batch augments), as when workers load.
    """
    main = get_worker_info() is None
    if main:
        saved = (random.getstate(), np.random.get_state(),
                 torch.get_rng_state())
    random.seed(seed)
    np.random.seed(seed & 0xFFFFFFFF)
    # The CPU generator only: torch.manual_seed also seeds every
    # accelerator, 100 times slower, and the data pipelines run on CPU.
    torch.default_generator.manual_seed(seed)
    try:
        yield
    finally:
        if main:
            random.setstate(saved[0])
            np.random.set_state(saved[1])
            torch.set_rng_state(saved[2])


@DATASETS.register_module()
class PositionSeededDataset:
    """A dataset whose samples load under a seed of their own.

    Indexed with a :class:`SeededIndex` (what the samplers of this module
    yield), it loads ``dataset[index]`` under :func:`seeded`; with a plain
    index, as the wrapped dataset. Every other attribute, read or
    written (``metainfo``, ``pipeline``, ``full_init``, ...), is the wrapped
    dataset's, so hooks that switch the pipeline keep working.

    Args:
        dataset: The dataset, or its config.
        **dataset_keys: Keys of the dataset's config set on this wrapper's
            config (mmyolo's YOLOX mode switch sets ``pipeline`` on the
            train dataset's config and builds it again).
    """

    def __init__(self, dataset: Union[dict, Sized], **dataset_keys) -> None:
        if isinstance(dataset, dict):
            dataset = DATASETS.build(dict(dataset, **dataset_keys))
        elif dataset_keys:
            raise TypeError(f'{sorted(dataset_keys)} are keys of a dataset '
                            'config; the dataset given is built already')
        object.__setattr__(self, 'dataset', dataset)

    def __getitem__(self, index: int):
        seed = getattr(index, 'seed', None)
        if seed is None:
            return self.dataset[index]
        self._replay_history()
        with seeded(seed):
            return self.dataset[int(index)]

    def replay(self, plan: dict) -> None:
        """Before its next sample, each loading process (None: the main
        one, else a worker's id) loads the samples ``plan`` lists for it,
        in order, and throws them away: what they leave in the pipeline's
        image caches is then what they left in the uninterrupted run
        (:func:`mmdist.datasets.mix_cache.replay_plan`)."""
        object.__setattr__(self, '_plan', dict(plan))

    def _replay_history(self) -> None:
        plan = self.__dict__.get('_plan')
        if not plan:
            return
        worker = get_worker_info()
        samples = plan.pop(None if worker is None else worker.id, None)
        for sample in samples or []:
            with seeded(sample.seed):
                self.dataset[int(sample)]

    def __len__(self) -> int:
        return len(self.dataset)

    def __getattr__(self, name: str):
        if name == 'dataset':  # not set yet (unpickling)
            raise AttributeError(name)
        return getattr(self.dataset, name)

    def __setattr__(self, name: str, value) -> None:
        setattr(self.dataset, name, value)


@DATA_SAMPLERS.register_module()
class ResumableInfiniteSampler(InfiniteSampler):
    """MMEngine's InfiniteSampler that can start at any sample of its
    rank's stream and yields :class:`SeededIndex` es.

    The indices are those of :class:`mmengine.dataset.InfiniteSampler`
    with the same seed (one shuffled pass over the data after another,
    every rank taking every ``world_size``-th); :meth:`skip` moves the
    start, which costs the generation of the skipped indices only. Use it
    with :class:`PositionSeededDataset`.
    """

    def __init__(self, dataset: Sized, shuffle: bool = True,
                 seed: Optional[int] = None) -> None:
        super().__init__(dataset, shuffle=shuffle, seed=seed)
        self.start = 0

    def skip(self, samples: int) -> None:
        """Start the next iteration at this rank's ``samples``-th sample."""
        self.start = samples

    def __iter__(self) -> Iterator[SeededIndex]:
        indices = itertools.islice(self._infinite_indices(),
                                   self.rank + self.start * self.world_size,
                                   None, self.world_size)
        for position, index in enumerate(indices, self.start):
            yield SeededIndex(index, sample_seed(self.seed, self.rank,
                                                 position))


@DATA_SAMPLERS.register_module()
class SeededDefaultSampler(DefaultSampler):
    """MMEngine's DefaultSampler (one epoch per iteration, ``set_epoch``)
    yielding :class:`SeededIndex` es; a sample's position in the rank's
    stream is ``epoch * len(self) + i``. Use it with
    :class:`PositionSeededDataset`."""

    def __iter__(self) -> Iterator[SeededIndex]:
        first = self.epoch * self.num_samples
        for position, index in enumerate(super().__iter__(), first):
            yield SeededIndex(index, sample_seed(self.seed, self.rank,
                                                 position))
