"""Distillation from frozen teachers that run only what is distilled."""
import contextlib
from typing import (ContextManager, Dict, Iterator, List, Optional, Tuple,
                    Union)

import torch
from mmengine.logging import print_log
from mmengine.structures import BaseDataElement
from mmrazor.models.algorithms import SingleTeacherDistill
from mmrazor.models.utils import add_prefix
from mmrazor.registry import MODELS as MMRAZOR_MODELS
from torch import Tensor, nn

from mmdist.registry import MODELS
from .distill_checks import check_finite, check_record_indices, \
    split_loss_terms
from .fold_bn import Folded, fold_batch_norm
from .teacher_runtime import (CompileOption, CompiledForward, TeacherStream,
                              check_compiler, compile_options)
from .teacher_utils import (check_same_classes, check_same_normalisation,
                            check_same_priors, load_teacher_checkpoint,
                            model_task, student_state_dict)
from .teachers import (TeacherGroup, TeacherInfo, check_identities,
                       decode_identities, encode_identities,
                       file_sha256, identities, keep_loaded_teachers,
                       leave_out_teachers, teacher_specs)

__all__ = ['FrozenTeacherDistill', 'split_loss_terms',
           'typeless_preprocessor_to_student']


def typeless_preprocessor_to_student(kwargs: dict) -> None:
    """Give a typeless top-level preprocessor to the student, in place.

    mmpretrain's configs keep ``data_preprocessor`` at the top level without
    a ``type``; the Runner hands it to the algorithm. Its classifier gives it
    a type and the batch augments of ``train_cfg.augments`` (Mixup,
    CutMix), so the student is built with it and the algorithm uses the
    student's preprocessor: the teacher reads the batch that the student's
    augments mixed. The student's own ``data_preprocessor`` keys win, as
    the Runner lets a model's own win over the top-level one.
    """
    top = kwargs.get('data_preprocessor')
    student = kwargs.get('architecture')
    if isinstance(top, dict) and 'type' not in top and isinstance(
            student, dict):
        own = student.get('data_preprocessor') or {}
        kwargs['architecture'] = dict(
            student, data_preprocessor=dict(top, **own))
        kwargs['data_preprocessor'] = None


def _tensors(value: object) -> Iterator[Tensor]:
    """The tensors in nested lists, tuples and dicts."""
    if isinstance(value, Tensor):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _tensors(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _tensors(item)


@MODELS.register_module()
class FrozenTeacherDistill(SingleTeacherDistill):
    """MMRazor's SingleTeacherDistill with a frozen, forward-only teacher.

    MMRazor's algorithm runs the teacher in ``mode='loss'``: target
    assignment and every teacher loss are computed and thrown away. Here the
    teacher runs :meth:`teacher_forward` (by default its ``mode='tensor'``
    forward: backbone, neck and heads, no losses, no targets) under
    ``torch.no_grad``, stays in eval mode for the whole run (its BN
    statistics never move) and has no trainable parameters. The recorders,
    connectors and loss mappings of MMRazor's ConfigurableDistiller are used
    as they are.

    The teacher checkpoint is loaded strictly, and student and teacher must
    predict the same classes and normalise images alike (the teacher reads
    the student's preprocessed batch): all are checked when the model is
    built, before training starts. Checkpoints (and an EMA copy's) leave
    out a teacher that ``teacher_ckpt`` gives, which building the model
    loads again: an X101 teacher would otherwise double the size of every
    checkpoint of an R50 student. A checkpoint with the teacher's weights
    still loads them.

    Under ``--amp`` the teacher runs inside the same autocast as the
    student. ``teacher_precision`` runs the teacher alone under autocast in
    bfloat16 or float16, with or without ``--amp``: its forward, a large
    share of a step, is never backpropagated, and the distillation losses
    read its logits in float32.

    Several teachers: ``teachers=dict(<name>=dict(cfg_path=... or
    type=..., ckpt=..., precision=..., **overrides), ...)`` in place of
    ``teacher``, ``teacher_ckpt`` and ``teacher_precision``. Each is built,
    checked against the student (classes, normalisation, a dense
    detector's anchors), loaded, folded and frozen as one teacher is, and
    runs its forward in turn; ``model.teacher`` is then a
    :class:`TeacherGroup` of them, so that the distiller names their modules
    ``<name>.<module>`` (:class:`LogitDistiller`'s ``teachers``).

    The checkpoint files the teachers came from are hashed (SHA-256) when
    the model is built, and the hashes go into every checkpoint (the
    model's extra state). Loading a checkpoint, on ``--resume`` say, whose
    teachers had other hashes stops with both hashes, naming the teacher:
    a replaced file would otherwise be distilled from silently (the
    checkpoints leave the teachers out). ``allow_teacher_change=True``
    goes on with the new files, saying so in the log.

    Args:
        distiller: Config of the distiller (MMRazor ConfigurableDistiller).
        teacher: Config of the teacher or a built teacher; a
            ``dict(cfg_path=..., **overrides)`` builds the model of a config
            file, stock (``'mmdet::...'``, ``'mmseg::...'``) or the user's
            own (a path), with ``overrides`` merged into it (see
            :func:`teacher_config`).
        teacher_ckpt: Path or URL of the teacher's weights (with
            ``pretrained=True`` in ``teacher``, the stock config's model-zoo
            weights by default).
        teacher_precision: None (the student's precision), ``'bfloat16'``
            or ``'float16'``: the autocast dtype of the teacher's forward.
        student_ckpt: Path or URL of weights to start the student from: a
            checkpoint of the student's own config as mmdet, mmseg or
            mmpretrain saves it (or of an earlier distillation of it). It
            is checked against the student when the model is built and
            loaded after the Runner's weight initialisation (so nothing
            overwrites it); on ``--resume`` the resumed weights replace it.
        teacher_fold_bn: Fold the teacher's BatchNorm into the convolution
            before it, where the graph of one forward shows that
            convolution feeds it alone (:mod:`.fold_bn`), once its weights
            are loaded from ``teacher_ckpt``. Its logits equal the unfolded
            teacher's to float rounding. A teacher without ``teacher_ckpt``
            (its weights come later) is not folded.
        teacher_compile: True, or a dict of ``torch.compile`` options:
            compile the teacher's forward (:meth:`teacher_forward`). A
            detector is compiled with dynamic shapes (its keep-ratio resize
            makes every batch's size), others with static ones, unless the
            dict says; ``dict(mode='reduce-overhead')`` uses CUDA graphs,
            for fixed input sizes (segmentation crops, classification).
        channels_last: Student and teacher in channels-last memory format
            (the batch too).
        teacher_stream: On CUDA, run the teacher's forward on a stream of
            its own, beside the student's forward; the losses wait for it.
            Nothing changes on the CPU.
        teachers: Several teachers by name, see above.
        allow_teacher_change: Load a checkpoint whose teachers' files had
            other contents.
        **kwargs: The other arguments of SingleTeacherDistill
            (``architecture`` is the student).
    """

    def __init__(self,
                 distiller: dict,
                 teacher: Optional[dict] = None,
                 teacher_ckpt: Optional[str] = None,
                 teacher_precision: Optional[str] = None,
                 student_ckpt: Optional[str] = None,
                 teacher_fold_bn: bool = True,
                 teacher_compile: CompileOption = False,
                 channels_last: bool = False,
                 teacher_stream: bool = False,
                 teachers: Optional[Dict[str, dict]] = None,
                 allow_teacher_change: bool = False,
                 **kwargs) -> None:
        for fixed in ('teacher_trainable', 'teacher_norm_eval'):
            if fixed in kwargs:
                raise ValueError(
                    f'{type(self).__name__} keeps the teacher frozen and in '
                    f'eval mode; remove {fixed} from the config (use '
                    "MMRazor's SingleTeacherDistill for a trainable teacher)")
        compiled = compile_options(teacher_compile, None)
        if compiled is not None:
            check_compiler(compiled)
        specs = teacher_specs(teacher, teachers, teacher_ckpt,
                              teacher_precision)
        typeless_preprocessor_to_student(kwargs)
        # The models are built first, so that a class count, a
        # normalisation or anchors that differ are named before the
        # distiller hooks them (where mismatched logits would be the first
        # symptom).
        if isinstance(kwargs.get('architecture'), dict):
            kwargs['architecture'] = MMRAZOR_MODELS.build(
                kwargs['architecture'])
        built = {name: MMRAZOR_MODELS.build(model) if isinstance(
            model, dict) else model for name, (model, _) in specs.items()}
        student = kwargs.get('architecture')
        for name, model in built.items():
            if student is not None:
                who = specs[name][1].who
                check_same_classes(student, model, who)
                check_same_normalisation(student, model, who)
                check_same_priors(student, model, who)
        module = built[None] if None in built else TeacherGroup(built)
        super().__init__(distiller, module, teacher_ckpt=None, **kwargs)
        self.teacher_infos: List[TeacherInfo] = [
            info for _, info in specs.values()]
        self._check_distilled_teachers()
        self._check_roi_classifiers()
        for info in self.teacher_infos:
            self._load_teacher(info, teacher_fold_bn)
        self.allow_teacher_change = allow_teacher_change
        self.channels_last = channels_last
        if channels_last:
            self.student.to(memory_format=torch.channels_last)
            self.teacher.to(memory_format=torch.channels_last)
        self._compiled_teacher: Optional[CompiledForward] = None
        if compiled is not None:
            # Every batch of a detector has its own size. The function,
            # not a method bound to this model, is compiled: an EMA copy
            # of the model runs its own teacher.
            compiled = compile_options(
                teacher_compile, model_task(self.student) == 'detection'
                or None)
            self._compiled_teacher = CompiledForward(
                type(self).teacher_forward, compiled,
                "the teacher's forward")
        self.teacher_stream = TeacherStream() if teacher_stream else None
        self.register_state_dict_post_hook(leave_out_teachers)
        self.register_load_state_dict_pre_hook(keep_loaded_teachers)
        # Read now, so that a checkpoint of another model stops the build;
        # read again in init_weights (a held copy would be deep-copied with
        # the model, by EMA for one).
        self.student_ckpt = student_ckpt
        if student_ckpt:
            student_state_dict(self.student, student_ckpt)

    def _check_distilled_teachers(self) -> None:
        """With several teachers, the distiller's logits name them all, and
        only them."""
        names = getattr(self.distiller, 'teacher_names', None)
        if names is None:
            return
        named, ours = set(names()), {i.name for i in self.teacher_infos}
        if ours == {None}:
            if named:
                raise ValueError(
                    f'the distiller names teachers {sorted(named)}, and the '
                    'model has one teacher: use teacher=... in each logits '
                    "entry, or give the model teachers=dict(<name>=...)")
            return
        if not named:
            raise ValueError(
                'with several teachers, each logits entry names their '
                "modules: teachers=dict(<name>=dict(module='<module>')) in "
                'place of teacher=...')
        if named - ours or ours - named:
            raise ValueError(
                f'the distiller names teachers {sorted(named)} and the model '
                f'has {sorted(ours)}: every teacher must be distilled from '
                '(its forward would be wasted) and named as in teachers')

    def _check_roi_classifiers(self) -> None:
        """Refuse a two-stage detector's RoI classifier where the teacher
        runs a forward of its own: it would classify its own proposals, not
        the student's RoIs, and no two rows would be the same box."""
        if self.teacher_runs_after_student or not getattr(
                self.student, 'with_roi_head', False):
            return
        for name, spec in (getattr(self.distiller, 'logits', None)
                           or {}).items():
            module = spec.get('student', '')
            if not module.startswith('roi_head.'):
                continue
            raise ValueError(
                f"logits.{name}: the student's {module!r} classifies the "
                f'RoIs of a two-stage detector ({type(self.student).__name__})'
                f', and {type(self).__name__} runs the teacher on its own '
                'proposals, so no two rows would be the same box. Use '
                "type='mmdist.RoITeacherDistill', whose teacher classifies "
                "the student's sampled RoIs: inherit "
                "'mmdist::_base_/roi_distill.py' beside the student's config "
                "(model = dict(_delete_=True, architecture=_base_.model, "
                '**_base_.roi_distill_model)) and set the teacher; '
                "docs/configs.md, 'A two-stage student'")

    def _load_teacher(self, info: TeacherInfo, fold_bn: bool) -> None:
        """Load, hash, freeze and fold one teacher."""
        module = self.teacher_module(info.name)
        if info.ckpt:
            load_teacher_checkpoint(module, info.ckpt)
            # Keep init_weights from overwriting the loaded weights.
            module._is_init = True
            info.sha256 = file_sha256(info.ckpt)
        module.requires_grad_(False)
        module.eval()
        if fold_bn and info.ckpt:
            info.folded = self._fold_teacher_bn(info)

    # One teacher's settings, as single-teacher code reads them.
    @property
    def teacher_ckpt(self) -> Optional[str]:
        return self.teacher_infos[0].ckpt if self.single_teacher else None

    @property
    def teacher_dtype(self) -> Optional[torch.dtype]:
        return self.teacher_infos[0].dtype if self.single_teacher else None

    @teacher_dtype.setter
    def teacher_dtype(self, dtype: Optional[torch.dtype]) -> None:
        for info in self.teacher_infos:
            info.dtype = dtype

    @property
    def teacher_folded(self) -> List[Folded]:
        return [pair for info in self.teacher_infos for pair in info.folded]

    @property
    def single_teacher(self) -> bool:
        return self.teacher_infos[0].name is None

    def teacher_module(self, name: Optional[str] = None) -> nn.Module:
        """The teacher of that name (None: the one teacher)."""
        return self.teacher if name is None else self.teacher[name]

    def teacher_models(self) -> Iterator[Tuple[TeacherInfo, nn.Module]]:
        """Each teacher's info and module, in the order they were given."""
        for info in self.teacher_infos:
            yield info, self.teacher_module(info.name)

    def get_extra_state(self) -> torch.Tensor:
        """What checkpoints record of the teachers: their files' hashes, as
        a tensor (see :func:`encode_identities`)."""
        return encode_identities(identities(self.teacher_infos))

    def set_extra_state(self, state: Union[torch.Tensor, dict]) -> None:
        """A checkpoint's teachers must be this model's (see above)."""
        changed = check_identities(self.teacher_infos,
                                   decode_identities(state),
                                   self.allow_teacher_change)
        for line in changed:
            print_log(f'allow_teacher_change=True: going on with a changed '
                      f'teacher: {line}', logger='current', level=30)

    def init_weights(self) -> None:
        """Initialise as configured, then load ``student_ckpt`` into the
        student (the Runner calls this before it resumes or loads
        ``load_from``, which then win)."""
        super().init_weights()
        if self.student_ckpt:
            state_dict = student_state_dict(self.student, self.student_ckpt)
            self.student.load_state_dict(state_dict, strict=False)
            print_log(f'the student starts from {self.student_ckpt} '
                      '(model.student_ckpt)', logger='current')

    def _fold_teacher_bn(self, info: TeacherInfo) -> List[Folded]:
        """Fold a teacher's BatchNorm (see ``teacher_fold_bn``), except in
        the modules a teacher recorder reads."""
        module = self.teacher_module(info.name)
        recorded = [getattr(r, 'source', None) for r in
                    self.distiller.teacher_recorders.recorders.values()]
        skip = [r[len(info.prefix):] for r in recorded
                if isinstance(r, str) and r.startswith(info.prefix)]

        def forward():
            # A generated image: only the graph's shape matters.
            image = torch.randn(1, 3, 64, 64, requires_grad=True)
            return self.trace_teacher(module, image)
        try:
            return fold_batch_norm(module, forward, skip)
        except Exception as exc:  # a teacher that 64 x 64 does not suit
            print_log(f"{info.who}'s BatchNorm is left unfolded: its forward "
                      f'on a generated 64 x 64 image failed ({exc!r})',
                      logger='current', level=30)
            return []

    def trace_teacher(self, teacher: nn.Module, inputs: Tensor) -> object:
        """One teacher's forward on ``inputs`` alone, for tracing what it
        runs (:meth:`forward_teacher` without data samples); returns its
        outputs."""
        return self.forward_teacher(teacher, inputs, None)

    def forward_teacher(self, teacher: nn.Module, inputs: Tensor,
                        data_samples: Optional[List[BaseDataElement]]
                        ) -> object:
        """Run the part of one teacher that the recorders need; returns its
        outputs."""
        return teacher(inputs, data_samples, mode='tensor')

    def teacher_forward(self, inputs: Tensor,
                        data_samples: Optional[List[BaseDataElement]]
                        ) -> list:
        """Every teacher's :meth:`forward_teacher`, each in its precision;
        returns their outputs in order."""
        outputs = []
        for info, teacher in self.teacher_models():
            with self.teacher_precision(inputs, info.name):
                outputs.append(self.forward_teacher(teacher, inputs,
                                                    data_samples))
        return outputs

    def teacher_precision(self, inputs: Tensor,
                          name: Optional[str] = None) -> ContextManager:
        """The autocast that a teacher runs in (none unless configured)."""
        dtype = next(i.dtype for i in self.teacher_infos if i.name == name)
        if dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(inputs.device.type, dtype=dtype)

    #: Whether :meth:`teacher_forward_after_student` runs; subclasses that
    #: set it keep the teacher recorders open around the student.
    teacher_runs_after_student = False

    def teacher_forward_after_student(
            self, inputs: Tensor,
            data_samples: Optional[List[BaseDataElement]],
            teacher_outputs: list) -> None:
        """Teacher work that needs what the student did (none here).

        Runs under ``torch.no_grad``, the teacher recorders still holding
        what :meth:`teacher_forward` recorded, with what it returned.
        """

    def loss(self,
             inputs: Tensor,
             data_samples: Optional[List[BaseDataElement]] = None
             ) -> Dict[str, Tensor]:
        """Student losses plus the distillation losses."""
        distiller = self.distiller
        no_grad = contextlib.nullcontext() if self.student_trainable \
            else torch.no_grad()
        if self.channels_last:
            inputs = inputs.contiguous(memory_format=torch.channels_last)
        if self.distillation_stopped:
            # MMRazor's StopDistillHook (mmyolo's last epochs): the student
            # trains alone, and the teachers' forward would be wasted.
            return add_prefix(self.student(inputs, data_samples, mode='loss'),
                              'student')
        stream = self.teacher_stream
        with contextlib.ExitStack() as teacher_recording:
            teacher_recording.enter_context(distiller.teacher_recorders)
            distiller.set_deliveries_override(False)
            with distiller.deliveries, torch.no_grad(), \
                    stream.run(inputs) if stream else contextlib.nullcontext():
                teacher_outputs = self._compiled_teacher(
                    self, inputs, data_samples) if self._compiled_teacher \
                    else self.teacher_forward(inputs, data_samples)
            if not self.teacher_runs_after_student:
                teacher_recording.close()
            distiller.set_deliveries_override(True)
            with distiller.student_recorders, distiller.deliveries, no_grad:
                student_losses = self.student(
                    inputs, data_samples, mode='loss')
            if stream:
                stream.join(_tensors([
                    teacher_outputs,
                    *(r.data_buffer for r in
                      distiller.teacher_recorders.recorders.values())]))
            if self.teacher_runs_after_student:
                with torch.no_grad():
                    self.teacher_forward_after_student(inputs, data_samples,
                                                       teacher_outputs)

        losses = {}
        if self.calculate_student_loss:
            losses.update(add_prefix(student_losses, 'student'))
        check_record_indices(distiller)
        distill_losses = split_loss_terms(distiller.compute_distill_losses())
        check_finite(distiller, distill_losses)
        losses.update(add_prefix(distill_losses, 'distill'))
        return losses

    def __getattr__(self, name: str):
        """A part of the student read from the algorithm, where the
        algorithm has no such attribute: hooks written for the detector
        being trained reach into it (mmyolo's YOLOX mode switch sets
        ``runner.model.bbox_head.use_bbox_aux``)."""
        try:
            return super().__getattr__(name)
        except AttributeError:
            student = self.__dict__.get('_modules', {}).get('architecture')
            if student is not None and name in student._modules:
                return student._modules[name]
            raise

    def train(self, mode: bool = True) -> 'FrozenTeacherDistill':
        """Switch the student and distiller; the teachers stay in eval."""
        super().train(mode)
        self.teacher.eval()
        return self
