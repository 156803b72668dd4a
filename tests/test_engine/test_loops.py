"""mmdist's iteration-based loop over a finite sampler: the passes over the
data set are MMEngine's, batch for batch, without MMEngine's 2 s pause
where no loading worker is shut down."""
import mmengine.runner.loops as mmengine_loops
import pytest
from mmengine.dataset import DefaultSampler
from torch.utils.data import DataLoader

from mmdist.engine.loops import _DataloaderPasses


def loader(workers: int, persistent: bool = False) -> DataLoader:
    # 10 samples in batches of 4: a pass ends on a short batch.
    return DataLoader(list(range(10)), batch_size=4, num_workers=workers,
                      persistent_workers=persistent,
                      sampler=DefaultSampler(list(range(10)), shuffle=True,
                                             seed=3))


def draw(iterator, count):
    # range first: zip would draw a batch too many from the iterator.
    return [batch.tolist() for _, batch in zip(range(count), iterator)]


@pytest.fixture
def pauses(monkeypatch):
    """The seconds of each pause MMEngine's iterator makes (not made)."""
    made = []
    monkeypatch.setattr(mmengine_loops.time, 'sleep', made.append)
    return made


@pytest.mark.parametrize('workers, persistent, paused', [
    (0, False, False), (2, True, False), (2, False, True)])
def test_passes_are_mmengines_and_pause_only_to_restart_workers(
        workers, persistent, paused, pauses):
    # Three passes and a bit; each new pass is shuffled anew (set_epoch).
    theirs = draw(mmengine_loops._InfiniteDataloaderIterator(
        loader(workers, persistent)), 10)
    assert pauses == [2, 2, 2]
    assert theirs[0:3] != theirs[3:6]
    pauses.clear()
    ours = draw(_DataloaderPasses(loader(workers, persistent)), 10)
    assert ours == theirs
    assert pauses == ([2, 2, 2] if paused else [])


def test_adopting_goes_on_with_the_pass_under_way(pauses):
    data = loader(0)
    theirs = mmengine_loops._InfiniteDataloaderIterator(data)
    first = draw(theirs, 1)
    under_way = theirs._iterator
    ours = _DataloaderPasses.adopt(theirs)
    assert ours._iterator is under_way
    expected = draw(mmengine_loops._InfiniteDataloaderIterator(loader(0)),
                    6)
    assert first + draw(ours, 5) == expected
