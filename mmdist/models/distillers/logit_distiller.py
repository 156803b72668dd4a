"""Distil logits named by their modules, level by level."""
from typing import Dict, Iterator, List, Optional, Tuple

import torch
import torch.nn.functional as F
from mmrazor.models.distillers import ConfigurableDistiller
from mmrazor.registry import MODELS as MMRAZOR_MODELS
from torch import Tensor, nn

from mmdist.registry import MODELS

# The keys of one entry of ``logits``.
_REQUIRED = ('student', 'teacher', 'loss')
_OPTIONAL = ('inputs', 'resize')
# ``resize``: which side's grid both logits are brought to, and how.
_RESIZE_DEFAULTS = dict(to='teacher', mode='bilinear', align_corners=False)
_RESIZE_HINT = (
    "for logits at different resolutions (a SegFormer teacher at 1/4 and a "
    "DeepLabV3 student at 1/8, say), set logits.{name}.resize=dict("
    "to='teacher') to upsample the student's logits to the teacher's grid")


def _check_resize(name: str, resize: dict) -> None:
    """A ValueError naming what is wrong with an entry's ``resize``."""
    unknown = sorted(set(resize) - set(_RESIZE_DEFAULTS))
    resize = dict(_RESIZE_DEFAULTS, **resize)
    if unknown or resize['to'] not in ('student', 'teacher'):
        raise ValueError(
            f'logits.{name}.resize={resize}: expected dict(to=\'teacher\' '
            "or 'student', mode=<F.interpolate mode>, align_corners=...)"
            + (f'; unknown {unknown}' if unknown else ''))


def _resize_pair(student: Tensor, teacher: Tensor, to: str, mode: str,
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


def _size(module: nn.Module) -> Optional[int]:
    """The number of output channels of a conv or linear layer."""
    for attr in ('out_channels', 'out_features'):
        if isinstance(getattr(module, attr, None), int):
            return getattr(module, attr)
    return None


@MODELS.register_module()
class LogitDistiller(ConfigurableDistiller):
    """MMRazor's ConfigurableDistiller for logits named by module.

    Each entry of ``logits`` names the module that computes the logits in
    the student and in the teacher, and the loss that compares them::

        logits=dict(cls=dict(
            student='bbox_head.retina_cls', teacher='bbox_head.retina_cls',
            loss=dict(type='mmdist.DISTLoss', activation='sigmoid')))

    A :class:`LevelOutputsRecorder` on each side records every call of the
    module (a head shared by the FPN levels) or every member of a ModuleList
    (a head with one module per level), so the number of levels comes from
    the model. Student and teacher outputs are paired in the order they
    were computed and the loss is applied to each pair:

        loss_<name> = sum_l loss(student_l, teacher_l)

    ``loss_<name>`` is the term that trains; with more than one level each
    level is logged as ``<name>_l<i>`` (not added again to the total), and
    the ``inter``/``intra`` terms of a ``log_terms=True`` DIST loss are
    summed over the levels. Several entries, each with its loss weight
    (``loss_weight`` of its loss), distil several heads. The student's
    ModuleList and the teacher's must have the same length, and layers whose
    output size is known (conv and linear) the same size: checked when the
    algorithm is built. Call counts and shapes are checked at every
    iteration, with errors that name both modules.

    Args:
        logits: ``{name: dict(student=..., teacher=..., loss=...,
            inputs=..., resize=...)}``: module paths as
            ``model.named_modules()`` lists them, the loss config, and
            optionally more keyword arguments of the loss read from records,
            ``{argument: dict(recorder=..., from_student=True, record_idx=0,
            data_idx=None)}`` (the ground truth of ``ignore_index``, say),
            and ``resize=dict(to='teacher', mode='bilinear',
            align_corners=False)`` for ``(N, C, H, W)`` logits whose
            resolutions differ: the side not named is interpolated to the
            named side's ``(H, W)`` before the loss.
        **kwargs: ConfigurableDistiller's own arguments, for more terms
            beside the logits (recorders, connectors, losses and loss
            mappings of a feature mimic, for example).
    """

    def __init__(self,
                 logits: Dict[str, dict],
                 student_recorders: Optional[dict] = None,
                 teacher_recorders: Optional[dict] = None,
                 distill_losses: Optional[dict] = None,
                 **kwargs) -> None:
        if not logits:
            raise ValueError(
                'LogitDistiller needs logits=dict(<name>=dict(student='
                "'<module>', teacher='<module>', loss=dict(type=...)))")
        student_recorders = dict(student_recorders or {})
        teacher_recorders = dict(teacher_recorders or {})
        for name, spec in logits.items():
            if 'loss' in name:
                raise ValueError(
                    f'logits.{name}: an entry\'s name must not contain '
                    '"loss": it is logged as loss_<name> and its levels as '
                    '<name>_l<i>, which MMEngine would add to the total '
                    "again (use e.g. 'cls')")
            missing = [k for k in _REQUIRED if k not in spec]
            unknown = [k for k in spec if k not in _REQUIRED + _OPTIONAL]
            if missing or unknown:
                raise ValueError(
                    f'logits.{name} has {sorted(spec)}: expected '
                    f'{list(_REQUIRED)}, optionally {list(_OPTIONAL)}'
                    + (f'; missing {missing}' if missing else '')
                    + (f'; unknown {unknown}' if unknown else ''))
            if 'resize' in spec:
                _check_resize(name, spec['resize'])
            if f'loss_{name}' in (distill_losses or {}):
                raise ValueError(
                    f'logits.{name} logs loss_{name}, which distill_losses '
                    'also names: rename one of them')
            recorder = self.recorder_name(name)
            student_recorders[recorder] = dict(
                type='mmdist.LevelOutputs', source=spec['student'])
            teacher_recorders[recorder] = dict(
                type='mmdist.LevelOutputs', source=spec['teacher'])
        super().__init__(
            student_recorders=student_recorders,
            teacher_recorders=teacher_recorders,
            distill_losses=distill_losses,
            **kwargs)
        self.logits = {name: dict(spec) for name, spec in logits.items()}
        self.logit_losses = nn.ModuleDict({
            name: MMRAZOR_MODELS.build(spec['loss'])
            for name, spec in logits.items()
        })

    @staticmethod
    def recorder_name(name: str) -> str:
        """The name of the recorders of ``logits.<name>`` on both sides."""
        return f'logits_{name}'

    def _recorders(self, name: str):
        recorder = self.recorder_name(name)
        return (self.student_recorders.get_recorder(recorder),
                self.teacher_recorders.get_recorder(recorder))

    def _module_names(self, name: str) -> Tuple[str, str]:
        spec = self.logits[name]
        return (f"the student's {spec['student']!r}",
                f"the teacher's {spec['teacher']!r}")

    def prepare_from_teacher(self, model: nn.Module) -> None:
        """Hook the teacher, then check what the models alone can show."""
        super().prepare_from_teacher(model)
        for name in self.logits:
            student, teacher = self._recorders(name)
            s_name, t_name = self._module_names(name)
            if student.per_level and teacher.per_level and len(
                    student.modules) != len(teacher.modules):
                raise ValueError(
                    f'logits.{name}: {s_name} has {len(student.modules)} '
                    f'levels and {t_name} {len(teacher.modules)}; '
                    'distillation pairs them level by level')
            pairs = zip(student.modules, teacher.modules) if (
                student.per_level and teacher.per_level) else [
                    (s, t) for s in student.modules for t in teacher.modules]
            for s_module, t_module in pairs:
                s_size, t_size = _size(s_module), _size(t_module)
                if None not in (s_size, t_size) and s_size != t_size:
                    raise ValueError(
                        f'logits.{name}: {s_name} ({s_module}) outputs '
                        f'{s_size} channels and {t_name} ({t_module}) '
                        f'{t_size}: the logits must have the same shape '
                        '(the same classes, anchors and row layout)')

    def level_pairs(self, name: str) -> List[Tuple[Tensor, Tensor]]:
        """The (student, teacher) logits of each level of this iteration."""
        student, teacher = self._recorders(name)
        s_out, t_out = student.data_buffer, teacher.data_buffer
        s_name, t_name = self._module_names(name)
        if len(s_out) != len(t_out) or not s_out:
            raise ValueError(
                f'logits.{name}: {s_name} ran {len(s_out)} time(s) in this '
                f'iteration and {t_name} {len(t_out)}; distillation pairs '
                'their outputs level by level: name modules that run once '
                'per level in both models')
        resize = self.logits[name].get('resize')
        pairs = []
        for level, (s, t) in enumerate(zip(s_out, t_out)):
            if s.shape != t.shape and resize and s.dim() == t.dim() == 4 \
                    and s.shape[:2] == t.shape[:2]:
                s, t = _resize_pair(s, t, **dict(_RESIZE_DEFAULTS, **resize))
            if s.shape != t.shape:
                raise ValueError(
                    f'logits.{name}, level {level}: {s_name} gave '
                    f'{tuple(s.shape)} and {t_name} {tuple(t.shape)}: the '
                    'logits must have the same shape (classes, anchors, '
                    'resolution); ' + _RESIZE_HINT.format(name=name))
            pairs.append((s, t))
        return pairs

    def recorded_logits(
            self) -> Iterator[Tuple[str, str, bool, str, Tensor]]:
        """(loss name, level, from_student, recorder, logits) of every
        recorded level, for the finiteness check."""
        for name in self.logits:
            for from_student, recorder in zip((True, False),
                                              self._recorders(name)):
                for level, tensor in enumerate(recorder.data_buffer):
                    yield (f'loss_{name}', f'level {level}', from_student,
                           self.recorder_name(name), tensor)

    def compute_distill_losses(self) -> Dict[str, object]:
        """The losses of the loss mappings, then ``loss_<name>`` of each
        entry of ``logits`` with its levels and terms."""
        losses = super().compute_distill_losses()
        for name, loss_module in self.logit_losses.items():
            extra = {
                arg: self.get_record(**dict(dict(from_student=True), **spec))
                for arg, spec in self.logits[name].get('inputs', {}).items()
            }
            levels, terms = [], {}
            for s, t in self.level_pairs(name):
                value = loss_module(s, t, **extra)
                if isinstance(value, dict):
                    for term, term_value in value.items():
                        if term != 'loss':
                            terms[term] = terms.get(term, 0) + term_value
                    value = value['loss']
                levels.append(value)
            total = torch.stack(levels).sum() if len(levels) > 1 else levels[0]
            losses[f'loss_{name}'] = dict(loss=total, **terms) if terms \
                else total
            if len(levels) > 1:
                for level, value in enumerate(levels):
                    losses[f'{name}_l{level}'] = value.detach()
        return losses
