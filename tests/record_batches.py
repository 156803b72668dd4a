"""A hook for the resume tests: which images each training iteration got.

Imported by the test configs (custom_imports); appends one JSON line per
iteration and rank to ``<work_dir>/batches.jsonl``."""
import json
import os.path as osp

from mmengine.dist import get_rank
from mmengine.hooks import Hook
from mmengine.registry import HOOKS


@HOOKS.register_module(name='TestRecordBatchesHook', force=True)
class RecordBatchesHook(Hook):
    """Write the image paths of every training batch."""

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None) -> None:
        images = [osp.basename(sample.img_path)
                  for sample in data_batch['data_samples']]
        with open(osp.join(runner.work_dir, 'batches.jsonl'), 'a') as f:
            f.write(json.dumps(dict(iter=runner.iter, rank=get_rank(),
                                    images=images)) + '\n')
