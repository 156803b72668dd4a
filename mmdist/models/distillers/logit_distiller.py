"""Distil logits named by their modules, level by level."""
from typing import Dict, Iterator, List, Optional, Tuple

import torch
from mmrazor.models.distillers import ConfigurableDistiller
from mmrazor.registry import MODELS as MMRAZOR_MODELS
from torch import Tensor, nn

from mmdist.registry import MODELS
from .logit_specs import (OPTIONAL_KEYS, REQUIRED_KEYS, RESIZE_DEFAULTS,
                          check_channels, check_resize, out_size,
                          resize_pair, select_channels, shape_hint,
                          entry_teachers)


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

    With several teachers (an algorithm's ``teachers=dict(<name>=...)``),
    an entry names each teacher's module instead of ``teacher``::

        logits=dict(decode=dict(
            student='decode_head.conv_seg',
            teachers=dict(r101=dict(module='decode_head.conv_seg',
                                    weight=1.0),
                          segformer=dict(module='decode_head.conv_seg',
                                         weight=1.0,
                                         resize=dict(to='teacher'))),
            combine='per_teacher', loss=dict(type='mmdist.DISTLoss')))

    and ``combine`` says how they teach:

    - ``'per_teacher'``: one term per teacher, ``weight_k * sum_l
      loss(student_l, teacher_k_l)``, logged as ``loss_<name>_<teacher>``
      (levels as ``<name>_<teacher>_l<i>``); each teacher's ``resize``
      pairs its logits with the student's;
    - ``'ensemble'``: one term, ``sum_l loss(student_l, ensemble_l)``,
      against the logits of the teachers' mean probability weighted by
      ``weight`` (:func:`mmdist.models.losses.teacher_ensemble`, at the
      loss's ``tau``, ``activation`` and ``num_classes``), computed once;
      a teacher whose logits lie on another grid than the student's needs
      ``resize=dict(to='student')``.

    Args:
        logits: ``{name: dict(student=..., teacher=... or teachers=...,
            loss=..., inputs=..., resize=..., combine=...)}``: module paths
            as ``model.named_modules()`` lists them, the loss config, and
            optionally more keyword arguments of the loss read from records,
            ``{argument: dict(recorder=..., from_student=True, record_idx=0,
            data_idx=None)}`` (the ground truth of ``ignore_index``, say),
            and ``resize=dict(to='teacher', mode='bilinear',
            align_corners=False)`` for ``(N, C, H, W)`` logits whose
            resolutions differ: the side not named is interpolated to the
            named side's ``(H, W)`` before the loss (with several teachers,
            the default of each teacher's own ``resize``); and
            ``channels=dict(groups=..., start=..., stop=...)`` where the
            module computes more than the logits: its output channels are
            ``groups`` equal groups (one per prior), of which channels
            ``[start, stop)`` are the logits, kept in order on both sides
            (YOLOv5's ``convs_pred``: 3 priors x (4 box + 1 objectness + C
            classes), ``groups=3, start=5, stop=5 + C``).
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
            missing = [k for k in REQUIRED_KEYS if k not in spec]
            unknown = [k for k in spec
                       if k not in REQUIRED_KEYS + OPTIONAL_KEYS]
            if missing or unknown:
                raise ValueError(
                    f'logits.{name} has {sorted(spec)}: expected '
                    f'{list(REQUIRED_KEYS)}, optionally {list(OPTIONAL_KEYS)}'
                    + (f'; missing {missing}' if missing else '')
                    + (f'; unknown {unknown}' if unknown else ''))
            if 'resize' in spec:
                check_resize(name, spec['resize'])
            if 'channels' in spec:
                check_channels(name, spec['channels'])
            teachers = entry_teachers(name, spec)
            if f'loss_{name}' in (distill_losses or {}):
                raise ValueError(
                    f'logits.{name} logs loss_{name}, which distill_losses '
                    'also names: rename one of them')
            student_recorders[self.recorder_name(name)] = dict(
                type='mmdist.LevelOutputs', source=spec['student'])
            for teacher in teachers:
                # Several teachers sit side by side under their names.
                source = teacher['module'] if teacher['name'] is None \
                    else f"{teacher['name']}.{teacher['module']}"
                teacher_recorders[self.recorder_name(
                    name, teacher['name'])] = dict(
                        type='mmdist.LevelOutputs', source=source)
        super().__init__(
            student_recorders=student_recorders,
            teacher_recorders=teacher_recorders,
            distill_losses=distill_losses,
            **kwargs)
        self.logits = {
            name: dict(spec, teachers=entry_teachers(name, spec),
                       combine=spec.get('combine', 'per_teacher'))
            for name, spec in logits.items()
        }
        self.logit_losses = nn.ModuleDict({
            name: MMRAZOR_MODELS.build(spec['loss'])
            for name, spec in logits.items()
        })

    @staticmethod
    def recorder_name(name: str, teacher: Optional[str] = None) -> str:
        """The name of the recorders of ``logits.<name>`` (on both sides;
        with several teachers, ``logits_<name>.<teacher>`` on theirs)."""
        return f'logits_{name}' + (f'.{teacher}' if teacher else '')

    def teacher_names(self) -> List[str]:
        """The teachers named by the entries (none for one teacher)."""
        return sorted({t['name'] for spec in self.logits.values()
                       for t in spec['teachers'] if t['name'] is not None})

    def _recorders(self, name: str, teacher: Optional[str] = None):
        """(student recorder, teacher recorder) of an entry and teacher."""
        return (self.student_recorders.get_recorder(self.recorder_name(name)),
                self.teacher_recorders.get_recorder(
                    self.recorder_name(name, teacher)))

    def _module_names(self, name: str,
                      teacher: Optional[str] = None) -> Tuple[str, str]:
        spec = self.logits[name]
        module = next(t['module'] for t in spec['teachers']
                      if t['name'] == teacher)
        whose = "the teacher's" if teacher is None else \
            f"teacher {teacher!r}'s"
        return f"the student's {spec['student']!r}", f'{whose} {module!r}'

    def prepare_from_teacher(self, model: nn.Module) -> None:
        """Hook the teacher, then check what the models alone can show."""
        super().prepare_from_teacher(model)
        for name, spec in self.logits.items():
            for teacher in spec['teachers']:
                self._check_levels(name, teacher['name'])

    def _check_levels(self, name: str, teacher: Optional[str]) -> None:
        student, recorder = self._recorders(name, teacher)
        s_name, t_name = self._module_names(name, teacher)
        if student.per_level and recorder.per_level and len(
                student.modules) != len(recorder.modules):
            raise ValueError(
                f'logits.{name}: {s_name} has {len(student.modules)} '
                f'levels and {t_name} {len(recorder.modules)}; '
                'distillation pairs them level by level')
        pairs = zip(student.modules, recorder.modules) if (
            student.per_level and recorder.per_level) else [
                (s, t) for s in student.modules for t in recorder.modules]
        for s_module, t_module in pairs:
            s_size, t_size = out_size(s_module), out_size(t_module)
            if None not in (s_size, t_size) and s_size != t_size:
                raise ValueError(
                    f'logits.{name}: {s_name} ({s_module}) outputs '
                    f'{s_size} channels and {t_name} ({t_module}) '
                    f'{t_size}: the logits must have the same shape '
                    '(the same classes, anchors and row layout)')

    def level_pairs(self, name: str, teacher: Optional[str] = None,
                    resize: Optional[dict] = None
                    ) -> List[Tuple[Tensor, Tensor]]:
        """The (student, teacher) logits of each level of this iteration
        (of one of several teachers), brought to one grid by ``resize``
        (by default the entry's or the teacher's own)."""
        student, recorder = self._recorders(name, teacher)
        s_out, t_out = student.data_buffer, recorder.data_buffer
        s_name, t_name = self._module_names(name, teacher)
        if len(s_out) != len(t_out) or not s_out:
            raise ValueError(
                f'logits.{name}: {s_name} ran {len(s_out)} time(s) in this '
                f'iteration and {t_name} {len(t_out)}; distillation pairs '
                'their outputs level by level: name modules that run once '
                'per level in both models')
        if resize is None:
            resize = next(t['resize'] for t in self.logits[name]['teachers']
                          if t['name'] == teacher)
        channels = self.logits[name].get('channels')
        pairs = []
        for level, (s, t) in enumerate(zip(s_out, t_out)):
            if channels:
                s = select_channels(s, **channels)
                t = select_channels(t, **channels)
            if s.shape != t.shape and resize and s.dim() == t.dim() == 4 \
                    and s.shape[:2] == t.shape[:2]:
                s, t = resize_pair(s, t, **dict(RESIZE_DEFAULTS, **resize))
            if s.shape != t.shape:
                raise ValueError(
                    f'logits.{name}, level {level}: {s_name} gave '
                    f'{tuple(s.shape)} and {t_name} {tuple(t.shape)}: the '
                    'logits must have the same shape (classes, anchors, '
                    'resolution); ' + shape_hint(name, s, t))
            pairs.append((s, t))
        return pairs

    def recorded_logits(
            self) -> Iterator[Tuple[str, str, bool, str, Tensor]]:
        """(loss name, level, from_student, recorder, logits) of every
        recorded level, for the finiteness check."""
        for name, spec in self.logits.items():
            recorders = [(True, self.recorder_name(name), '')] + [
                (False, self.recorder_name(name, t['name']),
                 f" of teacher {t['name']!r}" if t['name'] else '')
                for t in spec['teachers']
            ]
            for from_student, recorder_name, whose in recorders:
                recorder = (self.student_recorders if from_student else
                            self.teacher_recorders).get_recorder(
                                recorder_name)
                for level, tensor in enumerate(recorder.data_buffer):
                    yield (f'loss_{name}', f'level {level}{whose}',
                           from_student, recorder_name, tensor)

    def compute_distill_losses(self) -> Dict[str, object]:
        """The losses of the loss mappings, then those of each entry of
        ``logits`` with its levels and terms: ``loss_<name>`` (one teacher,
        or an ensemble), or ``loss_<name>_<teacher>`` for each of several
        teachers."""
        losses = super().compute_distill_losses()
        for name, loss_module in self.logit_losses.items():
            spec = self.logits[name]
            extra = {
                arg: self.get_record(**dict(dict(from_student=True), **item))
                for arg, item in spec.get('inputs', {}).items()
            }
            teachers = spec['teachers']
            if spec['combine'] == 'ensemble':
                pairs = self._ensemble_pairs(name, loss_module)
                self._add_levels(losses, name, loss_module, pairs, extra, 1.)
                continue
            for teacher in teachers:
                key = name if teacher['name'] is None else \
                    f"{name}_{teacher['name']}"
                self._add_levels(losses, key, loss_module,
                                 self.level_pairs(name, teacher['name']),
                                 extra, teacher['weight'])
        return losses

    def _ensemble_pairs(self, name: str,
                        loss_module: nn.Module) -> List[Tuple[Tensor, Tensor]]:
        """(student, ensemble of the teachers) logits of each level."""
        from mmdist.models.losses.ensemble import teacher_ensemble
        teachers = self.logits[name]['teachers']
        per_teacher = [self.level_pairs(name, t['name']) for t in teachers]
        pairs = []
        for level, by_teacher in enumerate(zip(*per_teacher)):
            student = by_teacher[0][0]
            ensemble = teacher_ensemble(
                [t for _, t in by_teacher], [t['weight'] for t in teachers],
                getattr(loss_module, 'tau', 1.0),
                getattr(loss_module, 'activation', 'softmax'),
                getattr(loss_module, 'num_classes', None))
            pairs.append((student, ensemble))
        return pairs

    @staticmethod
    def _add_levels(losses: Dict[str, object], key: str,
                    loss_module: nn.Module, pairs: List[Tuple[Tensor, Tensor]],
                    extra: dict, weight: float) -> None:
        """``loss_<key>`` (times ``weight``) summed over the levels of
        ``pairs``, with its terms and, for several levels, each level."""
        levels, terms = [], {}
        for s, t in pairs:
            value = loss_module(s, t, **extra)
            if isinstance(value, dict):
                for term, term_value in value.items():
                    if term != 'loss':
                        terms[term] = terms.get(term, 0) + weight * term_value
                value = value['loss']
            levels.append(weight * value if weight != 1 else value)
        total = torch.stack(levels).sum() if len(levels) > 1 else levels[0]
        losses[f'loss_{key}'] = dict(loss=total, **terms) if terms else total
        if len(levels) > 1:
            for level, value in enumerate(levels):
                losses[f'{key}_l{level}'] = value.detach()
