"""Checks of each distillation step: the records a loss mapping reads
exist, and nothing a distillation loss reads or returns is NaN or Inf; and
the flattening of losses that log their terms."""
from typing import Dict, List

import torch
from torch import Tensor, nn


def split_loss_terms(losses: Dict[str, object]) -> Dict[str, Tensor]:
    """Flatten losses that return ``dict(loss=..., <term>=...)``.

    ``loss_dist_p3: dict(loss, inter, intra)`` becomes ``loss_dist_p3`` plus
    ``dist_p3_inter`` and ``dist_p3_intra``: names without "loss", which
    MMEngine logs but does not add to the total.
    """
    flat: Dict[str, Tensor] = {}
    for name, value in losses.items():
        if not isinstance(value, dict):
            flat[name] = value
            continue
        flat[name] = value['loss']
        stem = name.replace('loss', '').strip('_') or 'distill'
        for term, term_value in value.items():
            if term != 'loss':
                flat[f'{stem}_{term}'] = term_value
    return flat


def _raw_record(distiller: nn.Module, spec: dict) -> List[Tensor]:
    """The floating-point tensors a loss mapping reads, before connectors
    (running a connector again would cost a forward and a graph)."""
    spec = {k: v for k, v in spec.items()
            if k not in ('connector', 'connector_idx')}
    record = distiller.get_record(**spec)
    items = record if isinstance(record, (list, tuple)) else [record]
    return [t for t in items
            if isinstance(t, Tensor) and t.is_floating_point()]


def check_record_indices(distiller: nn.Module) -> None:
    """Fail clearly when a loss mapping reads a call its recorder did not
    record this iteration (``record_idx`` past the last one).

    Raises:
        IndexError: The mapping, the recorder and how many calls it has.
    """
    for name, mapping in distiller.loss_forward_mappings.items():
        for arg, spec in mapping.items():
            side = 'student' if spec['from_student'] else 'teacher'
            recorders = distiller.student_recorders if spec[
                'from_student'] else distiller.teacher_recorders
            recorder = recorders.get_recorder(spec['recorder'])
            index, count = spec.get('record_idx', 0), len(recorder.data_buffer)
            if not 0 <= index < count:
                raise IndexError(
                    f'loss_forward_mappings.{name}.{arg} reads record_idx='
                    f"{index} of the {side} recorder {spec['recorder']!r} "
                    f'({type(recorder).__name__} on {recorder.source!r}), '
                    f'which recorded {count} call(s) in this iteration: use '
                    f'a record_idx from 0 to {count - 1}')


def check_finite(distiller: nn.Module, losses: Dict[str, Tensor]) -> None:
    """Stop when a distillation loss or the logits it reads are not finite.

    A broken teacher checkpoint or a half-precision overflow would otherwise
    write NaN into every student weight, silently. All tensors are checked
    together, with one device sync; only when one fails is the culprit
    looked up.

    Raises:
        FloatingPointError: Which loss, which side (teacher or student, and
            which recorder) and which training iteration.
    """
    # (loss name, what it reads, from_student, recorder) or a loss alone.
    checked: List[tuple] = []
    flags = []
    for name, mapping in distiller.loss_forward_mappings.items():
        for arg, spec in mapping.items():
            for tensor in _raw_record(distiller, spec):
                checked.append((name, arg, spec['from_student'],
                                spec['recorder']))
                flags.append(torch.isfinite(tensor).all())
    recorded_logits = getattr(distiller, 'recorded_logits', None)
    for name, what, from_student, recorder, tensor in (
            recorded_logits() if recorded_logits else []):
        checked.append((name, what, from_student, recorder))
        flags.append(torch.isfinite(tensor).all())
    for name, value in losses.items():
        if name.startswith('loss') and isinstance(value, Tensor):
            checked.append((name, None, None, None))
            flags.append(torch.isfinite(value).all())
    if not flags:
        return
    flags = torch.stack(flags)
    if bool(flags.all()):
        return
    name, arg, from_student, recorder = checked[int(
        (~flags).nonzero()[0])]
    from mmengine.logging import MessageHub
    iteration = MessageHub.get_current_instance().get_info('iter')
    when = 'at an unknown iteration' if iteration is None else \
        f'at training iteration {iteration + 1}'
    if recorder is None:
        what = 'overflowed from finite inputs'
    else:
        side = 'student' if from_student else 'teacher'
        what = (f"reads NaN or Inf from the {side}'s {recorder!r} "
                f'record ({arg})')
    raise FloatingPointError(
        f'distillation loss {name} {what} {when} (loss value '
        f'{float(losses[name])}). A teacher: check teacher_ckpt (the right '
        "file, trained, not corrupted); with teacher_precision='float16', "
        "try 'bfloat16' or None. The student: lower the learning rate or "
        'the loss weights, or drop --amp. Nothing of this iteration was '
        'applied to the weights.')
