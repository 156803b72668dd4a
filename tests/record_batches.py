"""Hooks for the resume tests, imported by their configs (custom_imports).

``TestRecordBatchesHook`` appends which images each training iteration got
(one JSON line per iteration and rank) to ``<work_dir>/batches.jsonl``: their
file names, or for mmyolo's collated batches a hash of the batch.
``TestPauseHook`` holds a run at a set point until the test kills it, so
that the kill lands there however fast the machine is."""
import json
import os
import os.path as osp
import time

from mmengine.dist import get_rank
from mmengine.hooks import Hook
from mmengine.registry import HOOKS

# The file TestPauseHook writes in the work_dir when it pauses.
PAUSED = 'test_paused'


@HOOKS.register_module(name='TestRecordBatchesHook', force=True)
class RecordBatchesHook(Hook):
    """Write the image paths of every training batch."""

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None) -> None:
        samples = data_batch['data_samples']
        if isinstance(samples, dict):
            # mmyolo's yolov5_collate keeps no paths: the batch's pixels,
            # after its augmentations, stand for it.
            import hashlib
            inputs = data_batch['inputs']
            images = [hashlib.sha1(inputs.numpy().tobytes()).hexdigest()]
        else:
            images = [osp.basename(sample.img_path) for sample in samples]
        with open(osp.join(runner.work_dir, 'batches.jsonl'), 'a') as f:
            f.write(json.dumps(dict(iter=runner.iter, rank=get_rank(),
                                    images=images)) + '\n')


@HOOKS.register_module(name='TestPauseHook', force=True)
class PauseHook(Hook):
    """Sleep until killed: after iteration ``$TEST_PAUSE_AFTER_ITER`` (as
    logged, from 1) has been logged and checkpointed, or inside the save of
    the checkpoint of iteration ``$TEST_PAUSE_IN_SAVE_OF_ITER``, before it
    is written. Does nothing where neither is set."""
    priority = 'LOWEST'  # after the logger and the checkpoint hook

    @staticmethod
    def _pause_at(runner, name: str, iteration: int) -> None:
        if os.environ.get(name) == str(iteration):
            # Tell the test (tests.utils.kill_during) that it may kill.
            open(osp.join(runner.work_dir, PAUSED), 'w').close()
            time.sleep(3600)

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None) -> None:
        self._pause_at(runner, 'TEST_PAUSE_AFTER_ITER', runner.iter + 1)

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        self._pause_at(runner, 'TEST_PAUSE_IN_SAVE_OF_ITER',
                       checkpoint['meta']['iter'])
