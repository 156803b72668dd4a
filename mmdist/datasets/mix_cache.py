"""Mix transforms that keep a cache of recent images, on resume.

mmyolo's Mosaic and MixUp with ``use_cached=True`` (every RTMDet config)
and mmdet's CachedMosaic and CachedMixUp mix each image with images drawn
from a cache of the last ones that their loading process (the main one, or
a data-loader worker) has seen. What a sample becomes therefore depends on
the samples loaded before it in the same process, which a resumed run,
starting with empty caches, has not loaded. Before the first epoch of a
resumed run, :func:`replay_plan` lists, for each loading process, the
samples it would have loaded last (their indices and seeds, in order), and
:class:`~mmdist.datasets.PositionSeededDataset` loads them first, throwing
the results away: the caches then hold what the uninterrupted run's held.

How far back: ``'full'``, every sample the process loaded since the run
began (exact always, and as long as loading that many samples); or
``'window'`` (the default), the last samples that can still be in a cache:
twice the sum over the cached transforms of ``max_cached_images / prob``.
The window is exact for caches that drop their oldest entry
(``random_pop=False``, RTMDet-tiny's) and for runs that have loaded fewer
samples than it; a cache that drops a random entry (``random_pop=True``)
can keep an image from any time, and after a longer run the refilled cache
holds recent images like the uninterrupted run's, not the same ones.
Epoch-based runs only (mmyolo's, mmdet's); with non-persistent workers
every epoch starts with new workers and empty caches, so nothing is loaded
again.
"""
import copy
import math
from typing import Dict, Iterator, List, Optional

from torch.utils.data import DataLoader

HISTORIES = ('window', 'full')


def cached_transforms(dataset: object) -> List[object]:
    """The transforms of a dataset's pipeline that cache images (inside
    other transforms' ``pre_transform`` too)."""
    found = []

    def walk(transforms) -> None:
        for transform in transforms or []:
            if isinstance(getattr(transform, 'results_cache', None), list) \
                    and getattr(transform, 'use_cached', True):
                found.append(transform)
            inner = getattr(transform, 'pre_transform', None)
            walk(getattr(inner, 'transforms', inner))

    pipeline = getattr(dataset, 'pipeline', None)
    walk(getattr(pipeline, 'transforms', None))
    return found


def replay_window(transforms: List[object]) -> int:
    """How many of a process's last samples the window replays."""
    return 2 * sum(
        math.ceil(t.max_cached_images / max(getattr(t, 'prob', 1.0), 1e-3))
        for t in transforms)


def _sampler(loader: DataLoader):
    return getattr(loader.batch_sampler, 'sampler', loader.sampler)


def _epoch_batches(loader: DataLoader, epoch: int) -> Iterator[list]:
    """The batches (lists of :class:`~mmdist.datasets.SeededIndex`) that
    ``loader`` loads in ``epoch``, in order, from copies of its sampler and
    batch sampler (mmdet's aspect-ratio buckets included)."""
    memo = {id(loader.dataset): loader.dataset}
    batches = copy.deepcopy(loader.batch_sampler, memo)
    sampler = getattr(batches, 'sampler', None)
    if sampler is None or not hasattr(sampler, 'set_epoch'):
        raise TypeError(f'{type(loader.batch_sampler).__name__} has no '
                        'epoch-based sampler to replay')
    sampler.set_epoch(epoch)
    yield from batches


def replay_plan(loader: DataLoader, epoch: int, history: str = 'window',
                window: Optional[int] = None
                ) -> Dict[Optional[int], list]:
    """For each loading process of ``loader`` (None: the main one, else the
    worker's id), the samples it loaded before ``epoch``, the last
    ``window`` of them with ``history='window'``.

    Raises:
        ValueError: Another ``history``.
    """
    if history not in HISTORIES:
        raise ValueError(f'history={history!r}: use one of {HISTORIES}')
    workers = loader.num_workers
    if epoch == 0 or (workers and not loader.persistent_workers):
        return {}
    plan: Dict[Optional[int], list] = {}
    # Back from the last epoch, as far as the window reaches.
    for past in range(epoch - 1, -1, -1):
        done = {}
        for number, batch in enumerate(_epoch_batches(loader, past)):
            key = number % workers if workers else None
            done.setdefault(key, []).extend(batch)
        for key, samples in done.items():
            plan[key] = samples + plan.get(key, [])
        if history == 'window' and plan and all(
                len(samples) >= window for samples in plan.values()):
            break
    if history == 'window':
        plan = {key: samples[-window:] for key, samples in plan.items()}
    return plan
