"""The entries of ``LogitDistiller``'s ``logits``: what they may hold, the
teachers they name, and how a pair of logits is brought to one shape
(channels, resolution) before the loss."""
from typing import List, Optional, Tuple

import torch.nn.functional as F
from torch import Tensor, nn

# The keys of one entry of ``logits``: the student's module, the loss, and
# the teacher's module (one teacher) or the teachers' (several).
REQUIRED_KEYS = ('student', 'loss')
OPTIONAL_KEYS = ('inputs', 'resize', 'teacher', 'teachers', 'combine',
                 'channels')
TEACHER_KEYS = ('module', 'weight', 'resize')
COMBINE_MODES = ('per_teacher', 'ensemble')
# ``resize``: which side's grid both logits are brought to, and how.
RESIZE_DEFAULTS = dict(to='teacher', mode='bilinear', align_corners=False)
RESIZE_HINT = (
    "for logits at different resolutions (a SegFormer teacher at 1/4 and a "
    "DeepLabV3 student at 1/8, say), set logits.{name}.resize=dict("
    "to='teacher') to upsample the student's logits to the teacher's grid")


ROWS_HINT = (
    'the logits are rows of {rows} and {other} samples: each row must be the '
    "same sample on both sides. An RoI head's classifier classifies each "
    "model's own proposals; use type='mmdist.RoITeacherDistill', whose "
    "teacher classifies the student's RoIs (docs/configs.md, 'A two-stage "
    "student')")


def shape_hint(name: str, student: Tensor, teacher: Tensor) -> str:
    """What to do about logits of two shapes: resize dense logits of the
    same batch and classes; rows that differ in number are other samples,
    which no resizing pairs."""
    if student.dim() == teacher.dim() == 2 and \
            student.shape[0] != teacher.shape[0]:
        return ROWS_HINT.format(rows=student.shape[0],
                                other=teacher.shape[0])
    return RESIZE_HINT.format(name=name)


def check_channels(name: str, channels: dict) -> None:
    """A ValueError naming what is wrong with an entry's ``channels``."""
    groups, start, stop = (channels.get(k) for k in ('groups', 'start',
                                                     'stop'))
    if set(channels) != {'groups', 'start', 'stop'} or not all(
            isinstance(v, int) for v in (groups, start, stop)) or \
            groups < 1 or not 0 <= start < stop:
        raise ValueError(
            f'logits.{name}.channels={channels}: expected dict(groups=<the '
            'priors a position>, start=<first>, stop=<past the last>) of '
            'integers, groups >= 1 and 0 <= start < stop (YOLOv5: groups=3, '
            'start=5, stop=5 + num_classes)')


def select_channels(logits: Tensor, groups: int, start: int,
                    stop: int) -> Tensor:
    """Channels ``[start, stop)`` of each of ``groups`` equal groups of
    ``(N, C, ...)`` logits, in order: ``(N, groups * (stop - start), ...)``
    (YOLOv5's class logits out of its priors' box, objectness and classes).
    """
    size = logits.shape[1] // groups
    if logits.shape[1] % groups or stop > size:
        raise ValueError(
            f'channels=dict(groups={groups}, start={start}, stop={stop}) of '
            f'logits with {logits.shape[1]} channels: they must be {groups} '
            f'equal groups of at least {stop} channels each')
    grouped = logits.reshape(logits.shape[0], groups, size,
                             *logits.shape[2:])[:, :, start:stop]
    return grouped.reshape(logits.shape[0], groups * (stop - start),
                           *logits.shape[2:])


def check_resize(name: str, resize: dict) -> None:
    """A ValueError naming what is wrong with an entry's ``resize``."""
    unknown = sorted(set(resize) - set(RESIZE_DEFAULTS))
    resize = dict(RESIZE_DEFAULTS, **resize)
    if unknown or resize['to'] not in ('student', 'teacher'):
        raise ValueError(
            f'logits.{name}.resize={resize}: expected dict(to=\'teacher\' '
            "or 'student', mode=<F.interpolate mode>, align_corners=...)"
            + (f'; unknown {unknown}' if unknown else ''))


def resize_pair(student: Tensor, teacher: Tensor, to: str, mode: str,
                align_corners: bool) -> Tuple[Tensor, Tensor]:
    """Interpolate one side's ``(N, C, H, W)`` logits to the other's
    ``(H, W)``, as mmseg's heads resize logits (before any softmax)."""
    if mode not in ('linear', 'bilinear', 'bicubic', 'trilinear'):
        align_corners = None  # F.interpolate refuses it for these modes
    if to == 'teacher':
        student = F.interpolate(student, teacher.shape[2:], mode=mode,
                                align_corners=align_corners)
    else:
        teacher = F.interpolate(teacher, student.shape[2:], mode=mode,
                                align_corners=align_corners)
    return student, teacher


def entry_teachers(name: str, spec: dict) -> List[dict]:
    """The teachers of a ``logits`` entry as ``dict(name, module, weight,
    resize)``: one unnamed teacher for ``teacher='<module>'``, or each of
    ``teachers=dict(<name>='<module>' or dict(module=..., weight=...,
    resize=...))``.

    Raises:
        ValueError: Both or neither given, or a teacher spec that is not
            understood.
    """
    if ('teacher' in spec) == ('teachers' in spec):
        problem = ('gives both teacher and teachers' if 'teacher' in spec
                   else "is missing ['teacher']")
        raise ValueError(
            f'logits.{name} {problem}: give teacher=\'<module>\' (one '
            "teacher) or teachers=dict(<teacher name>=dict(module='<module>'"
            ', weight=1.0)) (several), not both')
    if 'teacher' in spec:
        if 'combine' in spec:
            raise ValueError(f'logits.{name}: combine applies to several '
                             'teachers (teachers=dict(...))')
        return [dict(name=None, module=spec['teacher'], weight=1.0,
                     resize=spec.get('resize'))]
    teachers = spec['teachers']
    if not isinstance(teachers, dict) or not teachers:
        raise ValueError(f'logits.{name}.teachers must be a non-empty dict '
                         '{teacher name: module or dict(module=..., '
                         'weight=..., resize=...)}')
    combine = spec.get('combine', 'per_teacher')
    if combine not in COMBINE_MODES:
        raise ValueError(f'logits.{name}.combine={combine!r}: use one of '
                         f'{COMBINE_MODES}')
    specs = []
    for teacher, item in teachers.items():
        item = dict(module=item) if isinstance(item, str) else dict(item)
        unknown = sorted(set(item) - set(TEACHER_KEYS))
        if unknown or 'module' not in item:
            raise ValueError(
                f'logits.{name}.teachers.{teacher}={item}: expected a module '
                f"name or dict(module='<module>', weight=1.0, resize=...)"
                + (f'; unknown {unknown}' if unknown else ''))
        resize = item.get('resize', spec.get('resize'))
        if resize is not None:
            check_resize(f'{name}.teachers.{teacher}', resize)
            to = dict(RESIZE_DEFAULTS, **resize)['to']
            if combine == 'ensemble' and to != 'student':
                raise ValueError(
                    f'logits.{name}.teachers.{teacher}: an ensemble averages '
                    "the teachers' probabilities on the student's grid: use "
                    "resize=dict(to='student')")
        weight = float(item.get('weight', 1.0))
        if weight <= 0:
            raise ValueError(f'logits.{name}.teachers.{teacher}.weight must '
                             f'be positive, got {weight}')
        specs.append(dict(name=teacher, module=item['module'],
                          weight=weight, resize=resize))
    return specs


def out_size(module: nn.Module) -> Optional[int]:
    """The number of output channels of a conv or linear layer."""
    for attr in ('out_channels', 'out_features'):
        if isinstance(getattr(module, attr, None), int):
            return getattr(module, attr)
    return None
