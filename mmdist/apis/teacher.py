"""Evaluating the teacher of a distillation config on its own."""
import copy
from typing import List, Optional, Tuple, Union

from mmengine.config import Config, ConfigDict

from mmdist.models.algorithms import teacher_config
from .runner import evaluator_metrics

Evaluators = Union[dict, List[dict]]


def _with_ann_file(evaluator: Evaluators, ann_file: Optional[str]
                   ) -> Evaluators:
    """``evaluator`` with each metric's ``ann_file`` set to ``ann_file``."""
    evaluator = copy.deepcopy(evaluator)
    if ann_file:
        for metric in evaluator_metrics(evaluator):
            if 'ann_file' in metric:
                metric['ann_file'] = ann_file
    return evaluator


def teacher_test_config(cfg: Config,
                        checkpoint: Optional[str] = None,
                        name: Optional[str] = None) -> Tuple[Config, str]:
    """Turn a distillation config into a test config of its teacher alone.

    The model becomes the teacher; the data stay the distillation config's
    test data (the data its student is evaluated on). A teacher given by
    ``cfg_path`` is evaluated with the metrics of its own config's
    ``test_evaluator``, reading the annotation file of the distillation
    config's evaluator; a teacher given as a model dict, with the
    distillation config's metrics.

    Args:
        cfg: A distillation config (``model.teacher`` and ``teacher_ckpt``,
            or ``model.teachers``).
        checkpoint: The teacher's weights; by default its checkpoint in
            the config.
        name: Which of several teachers (``model.teachers``).

    Returns:
        The test config and the teacher checkpoint to load into its model.

    Raises:
        ValueError: A config without a teacher, a name that is not one of
            its teachers (or missing, with several), or no checkpoint.
    """
    model = cfg.get('model') or {}
    teachers = model.get('teachers')
    if isinstance(teachers, dict):
        if name not in teachers:
            raise ValueError(
                f'{cfg.filename} has several teachers: name one, --teacher '
                f'<name> with <name> one of {sorted(teachers)}'
                + (f' (not {name!r})' if name else ''))
        teacher = dict(teachers[name])
        default = teacher.pop('ckpt', None)
        teacher.pop('precision', None)
    else:
        teacher, default = model.get('teacher'), model.get('teacher_ckpt')
        if not isinstance(teacher, dict):
            raise ValueError(
                f'--teacher evaluates the teacher of a distillation config, '
                f'and {cfg.filename} has no model.teacher dict')
        if name:
            raise ValueError(f'{cfg.filename} has one teacher: use --teacher '
                             f'without a name (not {name!r})')
    checkpoint = checkpoint or default
    if not checkpoint:
        raise ValueError(
            'no teacher checkpoint: give it after the config (tools/test.py '
            'CONFIG TEACHER.pth --teacher) or set model.teacher_ckpt (with '
            'several teachers, model.teachers.<name>.ckpt)')
    cfg = copy.deepcopy(cfg)
    ann_file = next((m['ann_file']
                     for m in evaluator_metrics(cfg.get('test_evaluator'))
                     if m.get('ann_file')), None)
    if 'cfg_path' in teacher:
        own = teacher_config(teacher)
        cfg.model = own.model
        if own.get('test_evaluator'):
            cfg.test_evaluator = _with_ann_file(own.test_evaluator, ann_file)
    else:
        cfg.model = teacher
    # The checkpoint is loaded strictly by the caller, not by the Runner.
    cfg.load_from = None
    if isinstance(cfg.get('default_hooks'), (dict, ConfigDict)):
        cfg.default_hooks.pop('teacher_eval', None)
    return cfg, checkpoint
