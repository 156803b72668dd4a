"""The resumable samplers, the per-sample seeds and the config change that
tools/train.py makes."""
import itertools
import pickle
import random

import numpy as np
import pytest
import torch
from mmengine.config import Config, ConfigDict
from mmengine.dataset import DefaultSampler, InfiniteSampler

from mmdist.apis import make_resumable
from mmdist.datasets import (PositionSeededDataset, ResumableInfiniteSampler,
                             SeededDefaultSampler, SeededIndex, sample_seed,
                             seeded)


class Draws:
    """A dataset whose samples are random draws (an augmentation)."""
    pipeline = 'first'

    def __len__(self):
        return 10

    def __getitem__(self, index):
        return (int(index), random.random(), float(np.random.rand()),
                float(torch.rand(())))


def test_sample_seeds_differ_and_repeat():
    seeds = {sample_seed(0, rank, pos) for rank in range(4)
             for pos in range(1000)}
    assert len(seeds) == 4000
    assert all(0 <= s < 2**63 for s in seeds)
    assert sample_seed(3, 1, 7) == sample_seed(3, 1, 7)
    assert sample_seed(3, 1, 7) != sample_seed(4, 1, 7)


def test_seeded_loading_leaves_the_main_random_state_alone():
    torch.manual_seed(1)
    random.seed(1)
    np.random.seed(1)
    expected = (random.random(), np.random.rand(), torch.rand(()))
    torch.manual_seed(1)
    random.seed(1)
    np.random.seed(1)
    with seeded(5):
        inside = (random.random(), np.random.rand(), torch.rand(()))
    with seeded(5):
        again = (random.random(), np.random.rand(), torch.rand(()))
    assert inside == again
    assert (random.random(), np.random.rand(), torch.rand(())) == expected


def test_position_seeded_dataset_is_the_dataset_it_wraps():
    inner = Draws()
    dataset = PositionSeededDataset(inner)
    assert len(dataset) == 10 and dataset.pipeline == 'first'
    dataset.pipeline = 'switched'  # as mmdet's PipelineSwitchHook does
    assert inner.pipeline == 'switched'
    a = dataset[SeededIndex(3, 11)]
    assert a == dataset[SeededIndex(3, 11)] and a[0] == 3
    assert a != dataset[SeededIndex(3, 12)]  # another position, other draws
    assert dataset[4][0] == 4  # a plain index: the dataset's own draws
    restored = pickle.loads(pickle.dumps(dataset))  # to spawned workers
    assert restored[SeededIndex(3, 11)] == a


def test_infinite_sampler_skips_to_any_sample_of_each_rank(monkeypatch):
    import mmengine.dataset.sampler as sampler_module
    dataset = list(range(7))
    for rank in (0, 1):
        monkeypatch.setattr(sampler_module, 'get_dist_info',
                            lambda rank=rank: (rank, 2))
        ours = ResumableInfiniteSampler(dataset, seed=3)
        theirs = InfiniteSampler(dataset, seed=3)
        stream = list(itertools.islice(iter(ours), 40))
        # MMEngine's indices, each with the seed of its rank and position.
        assert stream == list(itertools.islice(iter(theirs), 40))
        assert [s.seed for s in stream] == [
            sample_seed(3, rank, p) for p in range(40)]
        ours.skip(25)
        later = list(itertools.islice(iter(ours), 15))
        assert later == stream[25:]
        assert [s.seed for s in later] == [s.seed for s in stream[25:]]


def test_default_sampler_positions_run_on_across_epochs():
    ours = SeededDefaultSampler(list(range(6)), seed=2)
    theirs = DefaultSampler(list(range(6)), seed=2)
    seeds = []
    for epoch in (0, 1):
        ours.set_epoch(epoch)
        theirs.set_epoch(epoch)
        stream = list(ours)
        assert stream == list(theirs)
        seeds += [s.seed for s in stream]
    assert seeds == [sample_seed(2, 0, p) for p in range(12)]


def _config(**kwargs):
    cfg = dict(
        train_dataloader=dict(
            sampler=dict(type='InfiniteSampler', shuffle=True),
            dataset=dict(type='CityscapesDataset', data_root='x')),
        train_cfg=dict(type='IterBasedTrainLoop', max_iters=8),
        default_hooks=dict(checkpoint=dict(
            type='CheckpointHook', interval=4, _scope_='mmseg')))
    cfg.update(kwargs)
    return Config(cfg)


def test_make_resumable_swaps_loop_sampler_and_dataset():
    cfg = _config()
    make_resumable(cfg)
    assert cfg.train_cfg.type == 'mmdist.ResumableIterBasedTrainLoop'
    assert cfg.train_dataloader.sampler.type == \
        'mmdist.ResumableInfiniteSampler'
    assert cfg.train_dataloader.dataset == ConfigDict(
        type='mmdist.PositionSeededDataset',
        dataset=dict(type='CityscapesDataset', data_root='x'))
    assert cfg.default_hooks.checkpoint == dict(
        type='mmdist.AtomicCheckpointHook', interval=4)
    # MMEngine's other way of asking for an IterBasedTrainLoop.
    cfg = _config(train_cfg=dict(by_epoch=False, max_iters=8))
    make_resumable(cfg)
    assert cfg.train_cfg == dict(type='mmdist.ResumableIterBasedTrainLoop',
                                 max_iters=8)
    # Epoch-based: the loop stays, DefaultSampler gets seeds.
    cfg = _config(train_cfg=dict(type='EpochBasedTrainLoop', max_epochs=2))
    cfg.train_dataloader.sampler.type = 'DefaultSampler'
    make_resumable(cfg)
    assert cfg.train_cfg.type == 'EpochBasedTrainLoop'
    assert cfg.train_dataloader.sampler.type == 'mmdist.SeededDefaultSampler'
    # ... and the image caches of mix transforms refilled on resume.
    assert cfg.custom_hooks == [dict(type='mmdist.MixCacheReplayHook',
                                     history='window')]


def test_make_resumable_leaves_replay_and_other_samplers_alone():
    cfg = _config(resume_mode='replay')
    before = cfg.to_dict()
    make_resumable(cfg)
    assert cfg.to_dict() == before
    cfg = _config()
    cfg.train_dataloader.sampler.type = 'MyOwnSampler'
    make_resumable(cfg)
    # The loop replays on resume (it says why), nothing else changes.
    assert cfg.train_dataloader.sampler.type == 'MyOwnSampler'
    assert cfg.train_dataloader.dataset.type == 'CityscapesDataset'
    with pytest.raises(ValueError, match="resume_mode='fastest'"):
        make_resumable(_config(resume_mode='fastest'))


def test_keys_set_on_the_wrappers_config_reach_the_dataset():
    # mmyolo's YOLOX mode switch: cfg.train_dataloader.dataset.pipeline =
    # ..., then the loader is built again from the config.
    from mmengine.dataset import BaseDataset
    config = dict(type='mmdist.PositionSeededDataset', dataset=dict(
        type=BaseDataset, lazy_init=True, pipeline=[]))
    config['pipeline'] = [dict(type='mmdet.LoadAnnotations')]
    from mmengine.registry import DATASETS
    built = DATASETS.build(config)
    assert [type(t).__name__ for t in built.pipeline.transforms] == [
        'LoadAnnotations']
    with pytest.raises(TypeError, match=r"\['pipeline'\] are keys of a "
                       'dataset config'):
        PositionSeededDataset(Draws(), pipeline=[])
