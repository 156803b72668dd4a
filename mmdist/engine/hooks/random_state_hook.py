"""Random states saved with each checkpoint and restored on resume."""
import random
from typing import Optional

import numpy as np
import torch
from mmengine.hooks import Hook

from mmdist.registry import HOOKS


def get_random_state() -> dict:
    """The main process's Python, NumPy, torch and CUDA random states, in
    types that ``torch.load(weights_only=True)`` reads."""
    name, keys, pos, has_gauss, gauss = np.random.get_state()
    return dict(
        python=random.getstate(),
        numpy=(name, torch.from_numpy(keys.astype(np.int64)), pos,
               has_gauss, gauss),
        torch=torch.get_rng_state(),
        cuda=torch.cuda.get_rng_state_all()
        if torch.cuda.is_available() else [])


def set_random_state(state: dict) -> None:
    """Restore what :func:`get_random_state` returned."""
    version, internal, gauss = state['python']
    random.setstate((version, tuple(internal), gauss))
    name, keys, pos, has_gauss, cached = state['numpy']
    np.random.set_state(
        (name, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state['torch'])
    if state['cuda'] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state['cuda'])


@HOOKS.register_module()
class RandomStateHook(Hook):
    """Make a resumed run draw the random numbers of an uninterrupted one.

    MMEngine's resume restores the weights, the optimizer, the schedulers,
    the log history and the seed, but not the state of the random number
    generators: after ``--resume`` the data augmentation (with
    ``num_workers=0``) and any sampling in the model draw other numbers than
    the run that was interrupted would have. This hook stores the main
    process's Python, NumPy, torch and CUDA states in every checkpoint and
    restores them when training resumes from it (not for ``load_from``).
    Data-loader workers are reseeded by MMEngine, as without the hook.

    Validation leaves those states as it found them: its data loader draws
    a seed from torch's generator, so a validation between a checkpoint and
    the next iteration would otherwise make the uninterrupted run draw
    other numbers than one resumed from that checkpoint (which does not
    validate again). Its priority puts the restore after every other hook
    of ``after_val_epoch`` (the teacher's evaluation, for one).
    """

    priority = 'VERY_LOW'

    def __init__(self) -> None:
        self._before_val: Optional[dict] = None

    def before_val_epoch(self, runner) -> None:
        self._before_val = get_random_state()

    def after_val_epoch(self, runner, metrics=None) -> None:
        if self._before_val is not None:
            set_random_state(self._before_val)
            self._before_val = None

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        checkpoint['random_state'] = get_random_state()

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        state: Optional[dict] = checkpoint.get('random_state')
        if state is not None and getattr(runner, '_resume', False):
            set_random_state(state)
