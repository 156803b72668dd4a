"""The image caches of mix transforms on resume: a resumed loader, given the
samples each loading process loaded before, loads what the uninterrupted
one loaded (mmdist/datasets/mix_cache.py)."""
import random

import pytest
from mmengine.dataset import BaseDataset
from mmengine.registry import TRANSFORMS
from mmengine.runner import Runner

from mmdist.datasets.mix_cache import (cached_transforms, replay_plan,
                                       replay_window)


@TRANSFORMS.register_module(name='TestCachedMix', force=True)
class CachedMix:
    """The cache logic of mmyolo's Mosaic (use_cached=True): append the
    sample, drop the oldest or a random entry past ``max_cached_images``,
    mix with a random cached one."""

    def __init__(self, max_cached_images=3, random_pop=False, prob=1.0):
        self.max_cached_images, self.random_pop = max_cached_images, \
            random_pop
        self.prob, self.use_cached, self.results_cache = prob, True, []

    def __call__(self, results):
        if random.uniform(0, 1) > self.prob:
            return results
        self.results_cache.append(results['index'])
        if len(self.results_cache) > self.max_cached_images:
            pop = random.randint(0, len(self.results_cache) - 1) \
                if self.random_pop else 0
            self.results_cache.pop(pop)
        results['mixed'] = random.choice(self.results_cache)
        return results


class Numbers(BaseDataset):

    def load_data_list(self):
        return [dict(index=i) for i in range(10)]


def loader(workers, mix):
    return Runner.build_dataloader(dict(
        batch_size=2, num_workers=workers, persistent_workers=workers > 0,
        sampler=dict(type='mmdist.SeededDefaultSampler', shuffle=True,
                     seed=0), collate_fn=list,
        dataset=dict(type='mmdist.PositionSeededDataset', dataset=dict(
            type=Numbers, pipeline=[dict(type='TestCachedMix', **mix)]))))


def epoch(built, number):
    built.sampler.set_epoch(number)
    return [(s['index'], s.get('mixed')) for batch in built for s in batch]


@pytest.mark.parametrize('workers, mix, history', [
    (0, dict(max_cached_images=3), 'window'),
    (2, dict(max_cached_images=3), 'window'),
    (0, dict(max_cached_images=3, random_pop=True, prob=0.7), 'full'),
    (2, dict(max_cached_images=4, random_pop=True), 'full'),
], ids=['fifo', 'fifo_workers', 'random_pop_full', 'random_pop_workers'])
def test_a_resumed_loader_loads_what_the_uninterrupted_one_did(
        workers, mix, history):
    never = loader(workers, mix)
    expected = [epoch(never, number) for number in range(4)]
    resumed = loader(workers, mix)
    transforms = cached_transforms(resumed.dataset)
    assert [type(t) for t in transforms] == [CachedMix]
    plan = replay_plan(resumed, 3, history, replay_window(transforms))
    assert sorted(plan, key=str) == ([None] if not workers else [0, 1])
    resumed.dataset.replay(plan)
    assert epoch(resumed, 3) == expected[3]
    # Without the samples loaded before, the caches start empty.
    fresh = loader(workers, mix)
    assert epoch(fresh, 3) != expected[3]


def test_the_window_is_the_last_samples_of_each_process():
    built = loader(2, dict(max_cached_images=3))
    full = replay_plan(built, 3, 'full')
    window = replay_plan(built, 3, 'window', 4)
    assert {k: len(v) for k, v in full.items()} == {0: 18, 1: 12}
    assert {k: v for k, v in window.items()} == {
        k: v[-4:] for k, v in full.items()}
    # A worker's samples: every other batch of each epoch, in order.
    positions = [s.seed for s in full[1]]
    assert len(set(positions)) == 12


def test_nothing_to_load_at_the_start_or_with_new_workers_each_epoch():
    built = loader(0, dict(max_cached_images=3))
    assert replay_plan(built, 0) == {}
    fresh_workers = Runner.build_dataloader(dict(
        batch_size=2, num_workers=2, persistent_workers=False,
        sampler=dict(type='mmdist.SeededDefaultSampler', seed=0),
        dataset=dict(type=Numbers, pipeline=[])))
    assert replay_plan(fresh_workers, 3) == {}
    with pytest.raises(ValueError, match="history='all'"):
        replay_plan(built, 3, 'all')
