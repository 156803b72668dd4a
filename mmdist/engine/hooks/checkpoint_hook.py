"""MMEngine's CheckpointHook, with a checkpoint that a kill cannot take.

With ``max_keep_ckpts``, MMEngine's hook deletes the oldest checkpoint
before it writes the new one, and writes the new one in place. A job
killed in between (a slurm preemption, the OOM killer, a node lost) is
left with no whole checkpoint, and ``last_checkpoint`` names a deleted
file: ``--resume`` fails and the run starts over.
"""
import os
import os.path as osp
import shutil

from mmengine.dist import is_main_process
from mmengine.fileio import LocalBackend
from mmengine.hooks import CheckpointHook

from mmdist.registry import HOOKS

# Suffix of a checkpoint being written; renamed once it is whole.
PARTIAL = '.part'


def write_atomically(path: str, text: str) -> None:
    """Replace the text file ``path`` in one step (no half-written file)."""
    partial = path + PARTIAL
    with open(partial, 'w') as f:
        f.write(text)
    os.replace(partial, path)


@HOOKS.register_module()
class AtomicCheckpointHook(CheckpointHook):
    """MMEngine's ``CheckpointHook`` that never leaves a run without a
    whole checkpoint.

    Same arguments and files as MMEngine's hook; only the order of the
    steps differs: the new checkpoint is written to ``<name>.part`` and
    renamed (an atomic step on one file system), then ``last_checkpoint``
    is replaced the same way, and only then are the checkpoints beyond
    ``max_keep_ckpts`` deleted. Killed at any point, the work_dir holds
    the checkpoint that ``last_checkpoint`` names, whole. The cost: for the
    time of a save, ``max_keep_ckpts + 1`` checkpoints on disk.

    Checkpoints saved through another file backend (``backend_args`` to
    object storage, which has no rename) are saved as MMEngine saves them.
    ``mmdist.apis.make_resumable`` (run by ``tools/train.py``) puts this
    hook in place of ``CheckpointHook``.
    """

    def _save_checkpoint_with_step(self, runner, step, meta) -> None:
        if not isinstance(self.file_backend, LocalBackend):
            return super()._save_checkpoint_with_step(runner, step, meta)
        outdated = []
        # The bookkeeping is MMEngine's (the ids go into the checkpoint);
        # only the deletion waits until the new checkpoint is whole.
        if self.max_keep_ckpts > 0 and not (
                self.keep_ckpt_ids and self.keep_ckpt_ids[-1] == step):
            if len(self.keep_ckpt_ids) == self.max_keep_ckpts:
                outdated.append(self.keep_ckpt_ids.popleft())
            self.keep_ckpt_ids.append(step)
            runner.message_hub.update_info('keep_ckpt_ids',
                                           list(self.keep_ckpt_ids))
        filename = self.filename_tmpl.format(step)
        self.last_ckpt = osp.join(self.out_dir, filename)
        runner.message_hub.update_info('last_ckpt', self.last_ckpt)
        runner.save_checkpoint(
            self.out_dir,
            filename + PARTIAL,
            self.file_client_args,
            save_optimizer=self.save_optimizer,
            save_param_scheduler=self.save_param_scheduler,
            meta=meta,
            by_epoch=self.by_epoch,
            backend_args=self.backend_args,
            **self.args)
        if not is_main_process():
            return
        os.replace(self.last_ckpt + PARTIAL, self.last_ckpt)
        write_atomically(
            osp.join(runner.work_dir, 'last_checkpoint'), self.last_ckpt)
        for old in outdated:
            path = osp.join(self.out_dir, self.filename_tmpl.format(old))
            if osp.isdir(path):
                shutil.rmtree(path)
            elif osp.isfile(path):
                os.remove(path)
