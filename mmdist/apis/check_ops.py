"""Which mmcv ops a model calls, where each comes from, and which are
missing: what ``tools/check_ops.py`` reports for a config.

A model of the config is built with random weights (nothing is
downloaded), then takes one prediction and one training step on generated
inputs of its task (detection, segmentation or classification) on each
device asked for. Every call into mmcv's compiled ``_ext`` module is
recorded with its device and its source: ``mmcv`` (a compiled kernel),
``mmdist`` (a torch version, :mod:`mmdist.ops`) or ``missing`` (neither).
"""
import contextlib
import copy
import dataclasses
import traceback
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import torch
from mmengine.config import Config, ConfigDict
from torch import nn

from mmdist.ops import FULL_MMCV_HINT
from mmdist.ops.ext import MissingOpError, first_tensor

#: The tasks a model can be checked for, by the package of its base class.
TASKS = ('detection', 'segmentation', 'classification')

#: Where each phase of the check stands: it ran, or why it did not.
OK = 'ok'


class OpsCalled(set):
    """The names of the ``_ext`` functions called, with ``sources``: for
    each name, the source (``'mmcv'``, ``'mmdist'`` or ``'missing'``) on
    each device type it was called on."""

    def __init__(self) -> None:
        super().__init__()
        self.sources: Dict[str, Dict[str, str]] = {}
        #: The op of the last call that found no implementation.
        self.last_missing: Optional[str] = None

    def add_call(self, name: str, device: str, source: str) -> None:
        self.add(name)
        self.sources.setdefault(name, {})[device] = source
        if source == 'missing':
            self.last_missing = name


def _source(ext: object, function: object, device: str) -> str:
    """Where a call of ``function`` on ``device`` is computed."""
    if getattr(ext, 'MMDIST_STANDIN', False):
        return 'mmdist'
    from mmdist.compat import MMCVOpRouter
    if isinstance(function, MMCVOpRouter) and (
            function.devices is None or device in function.devices):
        return 'mmdist'
    return 'mmcv'


def _is_missing_kernel(error: BaseException) -> bool:
    """A compiled mmcv without a kernel for this device, or the stand-in
    without a torch version of the op."""
    return isinstance(error, MissingOpError) or (
        isinstance(error, RuntimeError)
        and 'implementation for device' in str(error)
        and 'not found' in str(error))


@contextlib.contextmanager
def record_mmcv_ops() -> Iterator[OpsCalled]:
    """Record the calls into mmcv's compiled ``_ext`` functions made inside
    the block (the ops a model really uses), with their device and source.
    A call that finds no implementation is recorded as ``'missing'`` and
    its error raised as before."""
    import mmcv._ext as ext
    called = OpsCalled()
    originals = {name: getattr(ext, name) for name in dir(ext)
                 if not name.startswith('_')
                 and callable(getattr(ext, name))}

    def recorder(name, function):
        def call(*args, **kwargs):
            try:
                device = first_tensor(args, kwargs).device.type
            except TypeError:
                device = 'cpu'
            try:
                result = function(*args, **kwargs)
            except Exception as error:
                if _is_missing_kernel(error):
                    called.add_call(name, device, 'missing')
                raise
            called.add_call(name, device, _source(ext, function, device))
            return result
        return call

    for name, function in originals.items():
        setattr(ext, name, recorder(name, function))
    try:
        yield called
    finally:
        for name, function in originals.items():
            setattr(ext, name, function)


def _strip_pretrained(node: object) -> None:
    """Drop the weights a model reads when it is built, in place:
    ``pretrained`` paths, teacher and student checkpoints (``Pretrained``
    init configs are skipped when it is initialised, see
    :func:`_no_pretrained_init`)."""
    if isinstance(node, (list, tuple)):
        for item in node:
            _strip_pretrained(item)
        return
    if not isinstance(node, dict):
        return
    for key in ('pretrained', 'teacher_ckpt', 'student_ckpt'):
        if isinstance(node.get(key), str):
            node[key] = None
    if node.get('pretrained') is True:  # a teacher's zoo weights
        node['pretrained'] = False
    for spec in (node.get('teachers') or {}).values():
        if isinstance(spec, dict) and isinstance(spec.get('ckpt'), str):
            spec['ckpt'] = None  # several teachers' checkpoints
    # Some backbones (DetectoRS's) load a Pretrained init_cfg themselves.
    init_cfg = node.get('init_cfg')
    if isinstance(init_cfg, dict) and init_cfg.get('type') == 'Pretrained':
        node['init_cfg'] = None
    elif isinstance(init_cfg, (list, tuple)):
        node['init_cfg'] = [c for c in init_cfg if not (
            isinstance(c, dict) and c.get('type') == 'Pretrained')] or None
    for value in node.values():
        _strip_pretrained(value)


def _keep_every_detection(node: object) -> None:
    """``score_thr = 0`` everywhere, so that a detector with random weights
    still runs its post-processing (NMS and what follows)."""
    if isinstance(node, (list, tuple)):
        for item in node:
            _keep_every_detection(item)
    elif isinstance(node, dict):
        for key, value in node.items():
            if key == 'score_thr' and isinstance(value, (int, float)):
                node[key] = 0.0
            else:
                _keep_every_detection(value)


def _pad_to(node: object, size: Tuple[int, int]) -> None:
    """Every data preprocessor that pads to a fixed ``size`` (mmseg's
    training crop) pads to ``size`` instead, in place."""
    if isinstance(node, (list, tuple)):
        for item in node:
            _pad_to(item, size)
    elif isinstance(node, dict):
        for key, value in node.items():
            if key == 'data_preprocessor' and isinstance(value, dict) \
                    and value.get('size') is not None:
                value['size'] = tuple(size)
            _pad_to(value, size)


def random_model_config(cfg: Config,
                        size: Optional[Tuple[int, int]] = None
                        ) -> ConfigDict:
    """The config's model with random weights: nothing is downloaded or
    read, and detectors keep every detection. A typeless top-level data
    preprocessor (mmpretrain) or one the model lacks is given to it, as
    the Runner does; with ``size``, one that pads to a fixed size pads to
    that instead."""
    model = copy.deepcopy(cfg.model)
    preprocessor = cfg.get('data_preprocessor')
    if preprocessor is not None and model.get('data_preprocessor') is None:
        model.data_preprocessor = copy.deepcopy(preprocessor)
    _strip_pretrained(model)
    _keep_every_detection(model)
    if size is not None:
        _pad_to(dict(data_preprocessor=model.get('data_preprocessor'),
                     model=model), size)
    return model


def build_random_model(cfg: Config,
                       size: Optional[Tuple[int, int]] = None) -> nn.Module:
    """Build and initialise the config's model with random weights (see
    :func:`random_model_config`), in its default scope, with SyncBN
    reverted to BN (one process)."""
    from mmengine.model import revert_sync_batchnorm
    from mmengine.registry import DefaultScope, init_default_scope

    from mmdist.registry import MODELS
    scope = cfg.get('default_scope') or 'mmdet'
    init_default_scope(scope)
    with DefaultScope.overwrite_default_scope(scope):
        model = MODELS.build(random_model_config(cfg, size))
    if hasattr(model, 'init_weights'):
        # MMEngine logs every parameter's initialisation.
        with _no_pretrained_init(), _quiet():
            model.init_weights()
    return revert_sync_batchnorm(model)


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """MMEngine's current logger at WARNING inside the block."""
    from mmengine.logging import MMLogger
    logger = MMLogger.get_current_instance()
    level = logger.level
    logger.setLevel('WARNING')
    try:
        yield
    finally:
        logger.setLevel(level)


@contextlib.contextmanager
def _no_pretrained_init() -> Iterator[None]:
    """MMEngine's ``Pretrained`` initialisation (ImageNet backbones, a
    stock teacher's own init) does nothing inside the block: the weights
    stay random and nothing is downloaded."""
    from mmengine.model.weight_init import PretrainedInit
    call = PretrainedInit.__call__
    PretrainedInit.__call__ = lambda self, module: None
    try:
        yield
    finally:
        PretrainedInit.__call__ = call


def _student(model: nn.Module) -> nn.Module:
    """The model that predicts: a distillation algorithm's student."""
    return getattr(model, 'architecture', None) or getattr(
        model, 'student', None) or model


def model_task(model: nn.Module) -> Optional[str]:
    """``'detection'``, ``'segmentation'``, ``'classification'`` or None,
    from the base class of the model (a distillation's student)."""
    from mmdist.models.algorithms.teacher_utils import model_task as task
    return task(_student(model))


def model_num_classes(model: nn.Module, default: int = 80) -> int:
    """The fewest classes any head of the model (a distillation's student)
    predicts: generated labels below it fit every head."""
    from mmdist.models.algorithms.teacher_utils import head_num_classes
    student = _student(model)
    counts = list(head_num_classes(student).values())
    for name in ('num_classes', 'num_things_classes'):
        value = getattr(student, name, None)
        if isinstance(value, int):
            counts.append(value)
    fusion = getattr(student, 'panoptic_fusion_head', None)
    if isinstance(getattr(fusion, 'num_things_classes', None), int):
        counts.append(fusion.num_things_classes)
    counts = [c for c in counts if c > 0]
    return min(counts) if counts else default


def detector_targets(model: nn.Module) -> Dict[str, bool]:
    """Which ground truth besides boxes a detector (a distillation's
    student) trains on: instance masks, a semantic map."""
    student = _student(model)
    roi_head = getattr(student, 'roi_head', None)
    panoptic = any(hasattr(student, name) for name in (
        'panoptic_head', 'panoptic_fusion_head'))
    return dict(
        with_mask=panoptic or bool(getattr(student, 'with_mask', False))
        or hasattr(student, 'mask_head'),
        with_semantic=panoptic or hasattr(student, 'semantic_head')
        or bool(getattr(roi_head, 'with_semantic', False)))


def generated_batch(task: str, batch_size: int, size: Tuple[int, int],
                    num_classes: int, seed: int = 0, boxes: int = 3,
                    with_mask: bool = False,
                    with_semantic: bool = False) -> Dict[str, List]:
    """A generated batch as a data loader yields it (uint8 images and data
    samples with ground truth), for ``train_step`` and ``val_step``.

    Detection: mmdet's demo inputs, ``boxes`` boxes an image, with instance
    masks and a semantic map if asked (:func:`detector_targets` says which
    a model needs). Segmentation: random labels with a band of 255.
    Classification: one label an image.
    """
    height, width = size
    if task == 'detection':
        from mmdet.testing import demo_mm_inputs
        torch.manual_seed(seed)
        return demo_mm_inputs(
            batch_size=batch_size, image_shapes=(3, height, width),
            num_items=[boxes] * batch_size, num_classes=max(num_classes, 2),
            with_mask=with_mask, with_semantic=with_semantic)
    generator = torch.Generator().manual_seed(seed)
    images = [torch.randint(0, 256, (3, height, width), dtype=torch.uint8,
                            generator=generator) for _ in range(batch_size)]
    if task == 'segmentation':
        from mmengine.structures import PixelData
        from mmseg.structures import SegDataSample
        samples = []
        for _ in range(batch_size):
            label = torch.randint(0, num_classes, (1, height, width),
                                  generator=generator)
            label[:, :height // 8] = 255
            sample = SegDataSample(gt_sem_seg=PixelData(data=label))
            sample.set_metainfo(dict(img_shape=size, pad_shape=size,
                                     ori_shape=size))
            samples.append(sample)
        return dict(inputs=images, data_samples=samples)
    if task == 'classification':
        from mmpretrain.structures import DataSample
        labels = torch.randint(0, num_classes, (batch_size, ),
                               generator=generator)
        samples = [DataSample(metainfo=dict(img_shape=size, ori_shape=size))
                   .set_gt_label(int(label)) for label in labels]
        return dict(inputs=images, data_samples=samples)
    raise ValueError(f'task={task!r}; expected one of {TASKS}')


def _to(data: Dict[str, List], device: str) -> Dict[str, List]:
    data = copy.deepcopy(data)
    data['inputs'] = [image.to(device) for image in data['inputs']]
    return data


def train_step(model: nn.Module, data: Dict[str, List]) -> Dict:
    """One training step with SGD (the model's own ``train_step``: the
    losses, their backward and an update)."""
    from mmengine.optim import OptimWrapper
    params = [p for p in model.parameters() if p.requires_grad]
    wrapper = OptimWrapper(torch.optim.SGD(params, lr=1e-5))
    model.train()
    return model.train_step(copy.deepcopy(data), wrapper)


def predict_step(model: nn.Module, data: Dict[str, List]) -> List:
    """One prediction (``val_step``) in eval mode, without gradients."""
    model.eval()
    try:
        with torch.no_grad():
            return model.val_step(copy.deepcopy(data))
    finally:
        model.train()


@dataclasses.dataclass
class Step:
    """One phase of the check on one device.

    Attributes:
        phase: ``'predict'`` or ``'train'``.
        device: ``'cpu'`` or ``'cuda'``.
        status: ``'ok'``, or why it failed: ``'missing op <name>'`` or
            the error's type and message.
    """
    phase: str
    device: str
    status: str


@dataclasses.dataclass
class OpsReport:
    """What :func:`check_ops` found for one config.

    Attributes:
        config: The config checked.
        model: The model's type (and its student's, for a distillation).
        task: One of :data:`TASKS`, or None where it could not be told.
        steps: Each phase on each device.
        ops: For each ``_ext`` function called, its source on each device.
        error: Why the model could not be built or checked, if it could
            not.
    """
    config: str
    model: str = ''
    task: Optional[str] = None
    steps: List[Step] = dataclasses.field(default_factory=list)
    ops: Dict[str, Dict[str, str]] = dataclasses.field(default_factory=dict)
    error: Optional[str] = None

    @property
    def missing(self) -> List[str]:
        """The ops called that neither mmcv nor mmdist provides."""
        return sorted(name for name, sources in self.ops.items()
                      if 'missing' in sources.values())

    @property
    def ok(self) -> bool:
        return self.error is None and all(s.status == OK for s in self.steps)

    def status(self, phase: str) -> str:
        """One phase's status over the devices (``'ok'`` where all are)."""
        failed = [f'{s.device}: {s.status}' for s in self.steps
                  if s.phase == phase and s.status != OK]
        if self.error is not None:
            return 'not run'
        return '; '.join(failed) if failed else OK

    def format(self) -> str:
        """The report as the tool prints it."""
        lines = [f'config: {self.config}']
        if self.model:
            lines.append(f'model:  {self.model} ({self.task or "task?"})')
        if self.error is not None:
            lines.append(f'could not check it: {self.error}')
            return '\n'.join(lines)
        for step in self.steps:
            lines.append(f'{step.phase:<8} on {step.device}: {step.status}')
        if self.ops:
            lines.append('mmcv ops called:')
            for name in sorted(self.ops):
                where = ', '.join(f'{device}: {_SOURCES[source]}'
                                  for device, source in sorted(
                                      self.ops[name].items()))
                lines.append(f'  {name:<34} {where}')
        else:
            lines.append('mmcv ops called: none')
        if self.missing:
            lines.append(f'missing: {", ".join(self.missing)}. To get '
                         f'them, {FULL_MMCV_HINT}.')
        return '\n'.join(lines)

    def to_dict(self) -> dict:
        return dict(dataclasses.asdict(self), missing=self.missing,
                    ok=self.ok)


_SOURCES = dict(mmcv='compiled mmcv', mmdist='mmdist (torch)',
                missing='MISSING')


def _describe(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f'{type(error).__name__}: {text[0] if text else ""}'[:300]


def _run(fn, model: nn.Module, data: Dict, ops: OpsCalled,
         verbose: bool) -> str:
    """Run one phase; ``'ok'`` or why it failed."""
    ops.last_missing = None
    try:
        fn(model, data)
    except Exception as error:  # the report says what failed and why
        if verbose:
            traceback.print_exc()
        if ops.last_missing is not None:
            return f'missing op {ops.last_missing}'
        return _describe(error)
    return OK


def available_devices() -> List[str]:
    """The devices :func:`check_ops` runs on by default: the CPU, and CUDA
    where there is one."""
    return ['cpu'] + (['cuda'] if torch.cuda.is_available() else [])


def check_ops(cfg: Config, name: str = '', devices: Sequence[str] = ('cpu',),
              size: Optional[Tuple[int, int]] = None, batch_size: int = 2,
              verbose: bool = False) -> OpsReport:
    """Build the config's model with random weights and run one prediction
    and one training step on generated inputs on each device, recording
    the mmcv ops it calls.

    Args:
        cfg: The config (a distillation config, or any mmdet, mmseg or
            mmpretrain model config).
        name: How the report names the config.
        devices: Device types to run on, e.g. ``('cpu', 'cuda')``.
        size: The input ``(height, width)``; by default 224 x 224 for
            classification, 256 x 256 for detection and segmentation.
        batch_size: Images a training batch; predictions take as many as
            the config's validation batch, at most this.
        verbose: Print the traceback of a failure.

    Returns:
        The report; nothing is raised for a model that fails.
    """
    report = OpsReport(config=name or cfg.filename or '<config>')
    task_size = size
    try:
        model = build_random_model(cfg, size or (256, 256))
    except Exception as error:
        report.error = 'building the model failed: ' + _describe(error)
        if verbose:
            traceback.print_exc()
        return report
    student = _student(model)
    report.model = type(model).__name__ + (
        f', student {type(student).__name__}' if student is not model
        else '')
    report.task = model_task(model)
    if report.task is None:
        report.error = (
            'not an image detector, segmentor or classifier (an mmdet, mmseg '
            'or mmpretrain model): tools/check_ops.py generates inputs for '
            'those tasks only')
        return report
    size = task_size or ((224, 224) if report.task == 'classification'
                         else (256, 256))
    targets = detector_targets(model) if report.task == 'detection' else {}
    data = generated_batch(report.task, batch_size, size,
                           model_num_classes(model), **targets)
    # Predict as the config's validation does: mmdet's guided anchoring,
    # for one, takes one image at a time.
    val_batch = (cfg.get('val_dataloader') or {}).get('batch_size', 1)
    predict_data = {key: value[:min(batch_size, val_batch)]
                    for key, value in data.items()}
    with record_mmcv_ops() as ops:
        for device in devices:
            try:
                model.to(device)
            except Exception as error:
                report.steps.append(Step('predict', device,
                                         _describe(error)))
                continue
            for phase, fn, batch in (('predict', predict_step, predict_data),
                                     ('train', train_step, data)):
                report.steps.append(
                    Step(phase, device, _run(fn, model, _to(batch, device),
                                             ops, verbose)))
    report.ops = ops.sources
    return report
