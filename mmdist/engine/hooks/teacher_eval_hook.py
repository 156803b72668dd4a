"""Evaluate the frozen teacher once, beside the student's first validation."""
import copy
import numbers
from typing import Dict, Optional

import torch
from mmengine.evaluator import Evaluator
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from torch import nn
from torch.utils.data import DataLoader

from mmdist.registry import HOOKS


def evaluate_teacher(algorithm: nn.Module, dataloader: DataLoader,
                     evaluator: Evaluator,
                     name: Optional[str] = None) -> Dict[str, float]:
    """A teacher's metrics on ``dataloader``.

    The batches go through the algorithm's data preprocessor (the one the
    student's validation uses), then the teacher predicts in its
    precision, without gradients.

    Args:
        algorithm: A distillation algorithm with teachers (a
            :class:`FrozenTeacherDistill`), not wrapped in DDP.
        dataloader: The validation data.
        evaluator: A fresh evaluator (its results are consumed).
        name: Which of several teachers (None: the one teacher).

    Returns:
        The metrics, as ``Evaluator.evaluate`` returns them.
    """
    evaluator.dataset_meta = getattr(dataloader.dataset, 'metainfo', None)
    teacher = algorithm.teacher_module(name)
    for data_batch in dataloader:
        data = algorithm.data_preprocessor(data_batch, False)
        with torch.no_grad(), algorithm.teacher_precision(data['inputs'],
                                                          name):
            outputs = teacher(**data, mode='predict')
        evaluator.process(data_samples=outputs, data_batch=data_batch)
    return evaluator.evaluate(len(dataloader.dataset))


@HOOKS.register_module()
class TeacherEvalHook(Hook):
    """At the first validation of a distillation run, evaluate the teacher.

    A teacher checkpoint can fit the teacher's shapes and still be the
    wrong one (another data set, an untrained file). After the student's
    first validation the teacher is evaluated once, on the same data with a
    copy of the same evaluator, and its metrics are logged beside the
    student's as ``teacher/<metric>`` (the teacher is frozen, so the value
    stays in the later validation lines); each of several teachers as
    ``teacher/<name>/<metric>``. The distillation configs register it as
    ``default_hooks.teacher_eval``; ``default_hooks.teacher_eval=None``
    turns it off.
    """

    # Before LoggerHook (BELOW_NORMAL), which writes the validation line.
    priority = 'NORMAL'

    def __init__(self) -> None:
        #: Each teacher's metrics (by name; None for the one teacher).
        self.metrics: Optional[Dict[Optional[str], Dict[str, float]]] = None

    def after_val_epoch(self, runner,
                        metrics: Optional[Dict[str, float]] = None) -> None:
        if self.metrics is not None:
            return
        model = runner.model.module if is_model_wrapper(
            runner.model) else runner.model
        if not hasattr(model, 'teacher_infos'):
            raise TypeError(
                f'default_hooks.teacher_eval evaluates the teacher of a '
                f'distillation model, and {type(model).__name__} has none: '
                'remove it (default_hooks.teacher_eval=None)')
        self.metrics = {}
        for info in model.teacher_infos:
            evaluator = runner.build_evaluator(
                copy.deepcopy(runner.cfg.val_evaluator))
            # The validation loop has put the model in eval mode.
            metrics = evaluate_teacher(model, runner.val_loop.dataloader,
                                       evaluator, info.name)
            # numpy 2 keeps mmseg's float32 metrics as np.float32, which is
            # no Python float.
            scalars = {key: float(value) for key, value in metrics.items()
                       if isinstance(value, numbers.Real)}
            key = 'teacher' if info.name is None else f'teacher/{info.name}'
            for metric, value in scalars.items():
                runner.message_hub.update_scalar(f'val/{key}/{metric}', value)
            shown = ', '.join(f'{metric} {value:.4g}'
                              for metric, value in scalars.items())
            runner.logger.info(
                f'{info.who} ({info.ckpt or "no checkpoint"}) on the '
                f'validation set: {shown}')
            self.metrics[info.name] = metrics
