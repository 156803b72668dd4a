"""Single-teacher distillation whose teacher runs only what is distilled."""
import contextlib
from typing import ContextManager, Dict, Iterator, List, Optional

import torch
from mmengine.structures import BaseDataElement
from mmrazor.models.algorithms import SingleTeacherDistill
from mmrazor.models.utils import add_prefix
from mmrazor.registry import MODELS as MMRAZOR_MODELS
from torch import Tensor, nn

from mmdist.registry import MODELS
from .fold_bn import Folded, fold_batch_norm, fold_state_dict
from .teacher_runtime import (CompileOption, CompiledForward, TeacherStream,
                              check_compiler, compile_options)
from .teacher_utils import (check_same_classes, check_same_normalisation,
                            load_teacher_checkpoint, model_task,
                            student_state_dict, teacher_config)

# Accepted values of teacher_precision.
_AUTOCAST_DTYPES = {
    None: None,
    'bfloat16': torch.bfloat16,
    'float16': torch.float16
}


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


def _leave_out_teacher(module: nn.Module, state_dict: dict, prefix: str,
                       local_metadata: dict) -> None:
    """State-dict hook: a teacher loaded from ``teacher_ckpt`` is not
    saved again (building the model loads it, on resume too)."""
    if module.teacher_ckpt:
        for key in [k for k in state_dict
                    if k.startswith(prefix + 'teacher.')]:
            del state_dict[key]


def _keep_loaded_teacher(module: nn.Module, state_dict: dict, prefix: str,
                         *args) -> None:
    """Load pre-hook: a checkpoint without the teacher's weights leaves the
    teacher as it is; one with them (older mmdist, MMRazor) loads them,
    folded as the teacher is when it was saved unfolded."""
    teacher = prefix + 'teacher.'
    if not any(k.startswith(teacher) for k in state_dict):
        for name, value in module.teacher.state_dict().items():
            state_dict[teacher + name] = value
    elif module.teacher_folded:
        fold_state_dict(state_dict, module.teacher_folded, teacher)


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
        **kwargs: The other arguments of SingleTeacherDistill
            (``architecture`` is the student).
    """

    def __init__(self,
                 distiller: dict,
                 teacher: dict,
                 teacher_ckpt: Optional[str] = None,
                 teacher_precision: Optional[str] = None,
                 student_ckpt: Optional[str] = None,
                 teacher_fold_bn: bool = True,
                 teacher_compile: CompileOption = False,
                 channels_last: bool = False,
                 teacher_stream: bool = False,
                 **kwargs) -> None:
        for fixed in ('teacher_trainable', 'teacher_norm_eval'):
            if fixed in kwargs:
                raise ValueError(
                    f'{type(self).__name__} keeps the teacher frozen and in '
                    f'eval mode; remove {fixed} from the config (use '
                    "MMRazor's SingleTeacherDistill for a trainable teacher)")
        if teacher_precision not in _AUTOCAST_DTYPES:
            raise ValueError(
                f'teacher_precision={teacher_precision!r}; expected one of '
                f'{sorted(map(str, _AUTOCAST_DTYPES))} (None keeps the '
                "student's precision)")
        compiled = compile_options(teacher_compile, None)
        if compiled is not None:
            check_compiler(compiled)
        if isinstance(teacher, dict) and 'cfg_path' in teacher:
            teacher_cfg = teacher_config(teacher)
            teacher = teacher_cfg.model
            teacher_ckpt = teacher_ckpt or teacher_cfg.get('model_path')
        typeless_preprocessor_to_student(kwargs)
        # Both models are built first, so that a class count or a
        # normalisation that differ are named before the distiller hooks
        # them (where mismatched logits would be the first symptom).
        if isinstance(kwargs.get('architecture'), dict):
            kwargs['architecture'] = MMRAZOR_MODELS.build(
                kwargs['architecture'])
        if isinstance(teacher, dict):
            teacher = MMRAZOR_MODELS.build(teacher)
        if kwargs.get('architecture') is not None:
            check_same_classes(kwargs['architecture'], teacher)
            check_same_normalisation(kwargs['architecture'], teacher)
        super().__init__(distiller, teacher, teacher_ckpt=None, **kwargs)
        self.teacher_dtype = _AUTOCAST_DTYPES[teacher_precision]
        self.teacher_ckpt = teacher_ckpt
        if teacher_ckpt:
            load_teacher_checkpoint(self.teacher, teacher_ckpt)
            # Keep init_weights from overwriting the loaded weights.
            self.teacher._is_init = True
        self.teacher.requires_grad_(False)
        self.teacher.eval()
        self.teacher_folded: List[Folded] = []
        if teacher_fold_bn and teacher_ckpt:
            self.teacher_folded = self._fold_teacher_bn()
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
        self.register_state_dict_post_hook(_leave_out_teacher)
        self.register_load_state_dict_pre_hook(_keep_loaded_teacher)
        # Read now, so that a checkpoint of another model stops the build;
        # read again in init_weights (a held copy would be deep-copied with
        # the model, by EMA for one).
        self.student_ckpt = student_ckpt
        if student_ckpt:
            student_state_dict(self.student, student_ckpt)

    def init_weights(self) -> None:
        """Initialise as configured, then load ``student_ckpt`` into the
        student (the Runner calls this before it resumes or loads
        ``load_from``, which then win)."""
        super().init_weights()
        if self.student_ckpt:
            state_dict = student_state_dict(self.student, self.student_ckpt)
            self.student.load_state_dict(state_dict, strict=False)
            from mmengine.logging import print_log
            print_log(f'the student starts from {self.student_ckpt} '
                      '(model.student_ckpt)', logger='current')

    def _fold_teacher_bn(self) -> List[Folded]:
        """Fold the teacher's BatchNorm (see ``teacher_fold_bn``), except in
        the modules a teacher recorder reads."""
        recorded = [getattr(r, 'source', None) for r in
                    self.distiller.teacher_recorders.recorders.values()]

        def forward():
            # A generated image: only the graph's shape matters.
            image = torch.randn(1, 3, 64, 64, requires_grad=True)
            return self.teacher_trace_forward(image)
        try:
            return fold_batch_norm(self.teacher, forward,
                                   [r for r in recorded
                                    if isinstance(r, str)])
        except Exception as exc:  # a teacher that 64 x 64 does not suit
            from mmengine.logging import print_log
            print_log(f"the teacher's BatchNorm is left unfolded: its "
                      f'forward on a generated 64 x 64 image failed ({exc!r})',
                      logger='current', level=30)
            return []

    def teacher_trace_forward(self, inputs: Tensor) -> object:
        """The teacher's forward on ``inputs`` alone, for tracing what it
        runs (:meth:`teacher_forward` without data samples or side
        effects); returns its outputs."""
        return self.teacher_forward(inputs, None)

    def teacher_forward(self, inputs: Tensor,
                        data_samples: Optional[List[BaseDataElement]]
                        ) -> object:
        """Run the part of the teacher that the recorders need; returns its
        outputs."""
        return self.teacher(inputs, data_samples, mode='tensor')

    def teacher_precision(self, inputs: Tensor) -> ContextManager:
        """The autocast that the teacher runs in (none unless configured)."""
        if self.teacher_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(inputs.device.type, dtype=self.teacher_dtype)

    #: Whether :meth:`teacher_forward_after_student` runs; subclasses that
    #: set it keep the teacher recorders open around the student.
    teacher_runs_after_student = False

    def teacher_forward_after_student(
            self, inputs: Tensor,
            data_samples: Optional[List[BaseDataElement]]) -> None:
        """Teacher work that needs what the student did (none here).

        Runs under ``torch.no_grad``, the teacher recorders still holding
        what :meth:`teacher_forward` recorded.
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
        stream = self.teacher_stream
        with contextlib.ExitStack() as teacher_recording:
            teacher_recording.enter_context(distiller.teacher_recorders)
            distiller.set_deliveries_override(False)
            with distiller.deliveries, torch.no_grad(), \
                    self.teacher_precision(inputs), \
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
                with torch.no_grad(), self.teacher_precision(inputs):
                    self.teacher_forward_after_student(inputs, data_samples)

        losses = {}
        if self.calculate_student_loss:
            losses.update(add_prefix(student_losses, 'student'))
        if not self.distillation_stopped:
            check_record_indices(distiller)
            distill_losses = split_loss_terms(
                distiller.compute_distill_losses())
            check_finite(distiller, distill_losses)
            losses.update(add_prefix(distill_losses, 'distill'))
        return losses

    def train(self, mode: bool = True) -> 'FrozenTeacherDistill':
        """Switch the student and distiller; the teacher stays in eval."""
        super().train(mode)
        self.teacher.eval()
        return self
