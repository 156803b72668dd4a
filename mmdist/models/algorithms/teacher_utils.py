"""Loading and checking the teacher (and a student that starts from its
own weights) before any training starts."""
import os.path as osp
from typing import Dict, List, Optional

import torch
from mmengine.config import Config
from mmengine.runner.checkpoint import _load_checkpoint
from torch import nn

# Where OpenMMLab detectors, segmenters and classifiers keep their class
# count.
_HEAD_PATHS = ('bbox_head', 'roi_head.bbox_head', 'decode_head',
               'auxiliary_head', 'head')


def _get_submodule(model: nn.Module, path: str) -> Optional[nn.Module]:
    for name in path.split('.'):
        model = getattr(model, name, None)
        if model is None:
            return None
    # A cascade keeps one bbox head per stage; they share the class count.
    if isinstance(model, (nn.ModuleList, list)):
        model = model[0] if len(model) else None
    return model


def head_num_classes(model: nn.Module) -> Dict[str, int]:
    """``num_classes`` of each classification head found in ``model``."""
    found = {}
    for path in _HEAD_PATHS:
        head = _get_submodule(model, path)
        if head is not None and isinstance(
                getattr(head, 'num_classes', None), int):
            found[path] = head.num_classes
    return found


def model_task(model: nn.Module) -> Optional[str]:
    """``'detection'``, ``'segmentation'``, ``'classification'`` or None,
    from the base class of an mmdet, mmseg or mmpretrain model."""
    import contextlib
    bases = []
    with contextlib.suppress(ImportError):
        from mmdet.models.detectors import BaseDetector
        bases.append((BaseDetector, 'detection'))
    with contextlib.suppress(ImportError):
        from mmseg.models.segmentors import BaseSegmentor
        bases.append((BaseSegmentor, 'segmentation'))
    with contextlib.suppress(ImportError):
        from mmpretrain.models.classifiers import BaseClassifier
        bases.append((BaseClassifier, 'classification'))
    for base, task in bases:
        if isinstance(model, base):
            return task
    return None


def check_same_classes(student: nn.Module, teacher: nn.Module,
                       who: str = 'the teacher') -> None:
    """Raise a ValueError when a head of both models has other classes."""
    student_classes = head_num_classes(student)
    teacher_classes = head_num_classes(teacher)
    for path in student_classes.keys() & teacher_classes.keys():
        if student_classes[path] != teacher_classes[path]:
            raise ValueError(
                f'student and teacher must predict the same classes, but the '
                f'student {path} has num_classes={student_classes[path]} and '
                f'{who} {path} has num_classes={teacher_classes[path]}. Give '
                'both configs the same dataset classes.')


def _normalisation(model: nn.Module) -> Optional[tuple]:
    """(mean, std, channel swap) of a model's data preprocessor, or None."""
    pre = getattr(model, 'data_preprocessor', None)
    if pre is None or not getattr(pre, '_enable_normalize', False):
        return None
    # mmpretrain's preprocessor names its BGR -> RGB switch to_rgb.
    swap = getattr(pre, '_channel_conversion', getattr(pre, 'to_rgb', False))
    return (pre.mean.flatten().tolist(), pre.std.flatten().tolist(),
            bool(swap))


def check_same_normalisation(student: nn.Module, teacher: nn.Module,
                             who: str = 'the teacher') -> None:
    """Raise a ValueError when the teacher's config normalises images
    otherwise than the student's: the teacher is fed the student's
    preprocessed batch."""
    ours, theirs = _normalisation(student), _normalisation(teacher)
    if None not in (ours, theirs) and ours != theirs:
        raise ValueError(
            f'{who} reads the batch as the student\'s data preprocessor '
            'normalised it, but the two configs normalise images '
            f'differently: student mean/std/bgr_to_rgb {ours}, {who} '
            f'{theirs}. Pick a teacher trained with the student\'s '
            'normalisation (e.g. both caffe-style or both pytorch-style)')


def _anchor_layout(model: nn.Module) -> Optional[List[torch.Tensor]]:
    """A dense detector's anchors on a 256 x 256 image, level by level
    (None for a model without an anchor generator)."""
    generator = getattr(getattr(model, 'bbox_head', None), 'prior_generator',
                        None)
    if generator is None or not hasattr(generator, 'grid_priors'):
        return None
    sizes = [(max(1, 256 // s[0]), max(1, 256 // s[1]))
             for s in generator.strides]
    return [p.detach().cpu() for p in generator.grid_priors(sizes,
                                                            device='cpu')]


def check_same_priors(student: nn.Module, teacher: nn.Module,
                      who: str = 'the teacher') -> None:
    """Raise a ValueError when two dense detectors' anchors (or points)
    differ: their logits are paired position by position and anchor by
    anchor, so the teacher must share the student's layout."""
    ours, theirs = _anchor_layout(student), _anchor_layout(teacher)
    if ours is None or theirs is None:
        return
    if len(ours) != len(theirs) or any(
            a.shape != b.shape or not torch.equal(a, b)
            for a, b in zip(ours, theirs)):
        raise ValueError(
            f"{who}'s anchor layout differs from the student's "
            f'({len(theirs)} levels of {[tuple(p.shape) for p in theirs]} '
            f'priors against {[tuple(p.shape) for p in ours]}, or other '
            'sizes, ratios or strides): dense logits are distilled anchor by '
            'anchor. Pick a teacher whose bbox_head.anchor_generator '
            "(prior_generator) is the student's")


def _strip_prefix(state_dict: Dict[str, torch.Tensor],
                  prefix: str) -> Dict[str, torch.Tensor]:
    if state_dict and all(k.startswith(prefix) for k in state_dict):
        return {k[len(prefix):]: v for k, v in state_dict.items()}
    return state_dict


def _describe(keys: List[str], limit: int = 5) -> str:
    shown = ', '.join(keys[:limit])
    return shown + (f', ... ({len(keys)} in all)' if len(keys) > limit else '')


def read_state_dict(filename: str, role: str,
                    option: str) -> Dict[str, torch.Tensor]:
    """The state dict of a checkpoint file or URL, with clear errors.

    Args:
        filename: A local path or a URL (downloaded by MMEngine, once).
        role: What the checkpoint is for, as the errors name it
            (``'teacher'``, ``'student'``).
        option: The config option that names it, for the errors.

    Raises:
        FileNotFoundError: A local file that does not exist.
        ValueError: A file that cannot be read as a checkpoint of tensors.
    """
    if '://' not in filename and not osp.isfile(filename):
        raise FileNotFoundError(
            f'{role} checkpoint not found: {filename} ({option}). Point the '
            f'config at the {role}\'s weights: --cfg-options '
            f'{option}=/path/to/{role}.pth')
    try:
        checkpoint = _load_checkpoint(filename, map_location='cpu')
    except Exception as exc:
        raise ValueError(f'could not read the {role} checkpoint {filename} '
                         f'({option}): {exc}') from exc
    state_dict = checkpoint.get('state_dict', checkpoint) if isinstance(
        checkpoint, dict) else None
    if not isinstance(state_dict, dict) or not all(
            isinstance(v, torch.Tensor) for v in state_dict.values()):
        raise ValueError(
            f'the {role} checkpoint {filename} ({option}) holds no state dict '
            'of tensors (expected {"state_dict": {name: tensor}} or '
            '{name: tensor})')
    return _strip_prefix(state_dict, 'module.')


def check_state_dict_fits(model: nn.Module,
                          state_dict: Dict[str, torch.Tensor],
                          filename: str, role: str, hint: str) -> None:
    """Raise a ValueError naming what differs when ``state_dict`` does not
    fit ``model`` exactly: missing, unexpected or differently shaped
    parameters (BN's ``num_batches_tracked``, which old checkpoints lack
    and eval never uses, may be missing).

    Args:
        model: The model the weights are for.
        state_dict: The weights.
        filename: Where they come from, for the message.
        role: ``'teacher'`` or ``'student'``, for the message.
        hint: The message's last sentence: what to do about it.
    """
    own = model.state_dict()
    missing = sorted(k for k in own.keys() - state_dict.keys()
                     if not k.endswith('num_batches_tracked'))
    unexpected = sorted(state_dict.keys() - own.keys())
    mismatched = sorted(
        f'{k} {tuple(state_dict[k].shape)} vs {tuple(own[k].shape)}'
        for k in own.keys() & state_dict.keys()
        if state_dict[k].shape != own[k].shape)
    problems = []
    if missing:
        problems.append(f'missing keys: {_describe(missing)}')
    if unexpected:
        problems.append(f'unexpected keys: {_describe(unexpected)}')
    if mismatched:
        problems.append(f'shape mismatch (checkpoint vs {role}): '
                        f'{_describe(mismatched)}')
    if problems:
        raise ValueError(
            f'the {role} checkpoint {filename} does not fit the {role} '
            f'model ({type(model).__name__}): ' + '; '.join(problems) +
            f'. {hint}')


def load_teacher_checkpoint(teacher: nn.Module, filename: str) -> None:
    """Load ``filename`` into ``teacher`` strictly, with clear errors.

    Args:
        teacher: The built teacher model.
        filename: A local path or a URL (downloaded by MMEngine).

    Raises:
        FileNotFoundError: A local file that does not exist.
        ValueError: A file that cannot be read as a checkpoint, or whose
            weights do not fit the teacher (missing, unexpected or
            differently shaped parameters).
    """
    state_dict = read_state_dict(filename, 'teacher', 'model.teacher_ckpt')
    check_state_dict_fits(
        teacher, state_dict, filename, 'teacher',
        'Check that teacher_ckpt belongs to the teacher config.')
    teacher.load_state_dict(state_dict, strict=False)


def student_state_dict(student: nn.Module,
                       filename: str) -> Dict[str, torch.Tensor]:
    """The weights of ``model.student_ckpt``, checked against the student.

    A stock checkpoint of the student's own library (mmdet, mmseg,
    mmpretrain) holds the student's keys; a distillation checkpoint holds
    them under ``architecture.``, which is stripped (the teacher's and
    connectors' weights are left out).

    Raises:
        FileNotFoundError: A local file that does not exist.
        ValueError: A file that cannot be read as a checkpoint, or whose
            weights do not fit the student (another model, another class
            count, another architecture), naming what differs.
    """
    state_dict = read_state_dict(filename, 'student', 'model.student_ckpt')
    prefix = 'architecture.'
    if any(k.startswith(prefix) for k in state_dict):
        state_dict = {k[len(prefix):]: v for k, v in state_dict.items()
                      if k.startswith(prefix)}
    check_state_dict_fits(
        student, state_dict, filename, 'student',
        'model.student_ckpt must be a checkpoint of the student\'s own '
        'config (the same architecture and classes), as its library saves '
        'it, or of a distillation run of that student.')
    return state_dict


def teacher_config(teacher: dict) -> Config:
    """The whole config of a teacher given as ``dict(cfg_path=..., ...)``.

    ``cfg_path`` is a stock config (``'mmdet::retinanet/...py'``, as
    ``mmengine.hub`` reads it) or a config file of the user's own (a path,
    absolute or relative to the working directory). Every other key except
    ``pretrained`` overrides a field of the config's ``model``, merged as
    ``--cfg-options`` would (``bbox_head=dict(num_classes=3)`` changes only
    the number of classes). The model gets the config's default scope, so
    that it builds from a distillation config of another scope.

    Args:
        teacher: ``dict(cfg_path=..., pretrained=False, **overrides)``.

    Returns:
        The teacher's config, overrides applied; ``model_path`` holds the
        model-zoo weights of a stock config when ``pretrained=True``.

    Raises:
        FileNotFoundError: A local ``cfg_path`` that does not exist.
        ValueError: ``pretrained=True`` with a local file.
    """
    teacher = dict(teacher)
    cfg_path = teacher.pop('cfg_path')
    pretrained = teacher.pop('pretrained', False)
    scope = None
    if '::' in cfg_path:
        from mmengine.hub import get_config
        scope = cfg_path.split('::')[0]
        cfg = get_config(cfg_path, pretrained=bool(pretrained))
    else:
        if not osp.isfile(cfg_path):
            raise FileNotFoundError(
                f'teacher config not found: {cfg_path} (model.teacher.'
                f'cfg_path, relative to {osp.abspath(".")}). Give the path '
                "of the teacher's config file, or a stock one as "
                "'mmdet::<dir>/<file>.py' or 'mmseg::<dir>/<file>.py'")
        if pretrained:
            raise ValueError(
                f'pretrained=True reads the model-zoo weights of a stock '
                f'config; {cfg_path} is a local file: set teacher_ckpt to '
                'its checkpoint instead')
        cfg = Config.fromfile(cfg_path)
    if 'model' not in cfg:
        raise ValueError(f'the teacher config {cfg_path} has no model')
    # As mmengine.hub.get_model: the top-level preprocessor is the model's.
    if 'data_preprocessor' in cfg:
        cfg.model.data_preprocessor = cfg.data_preprocessor
    if teacher:
        cfg.merge_from_dict({'model': teacher})
    scope = scope or cfg.get('default_scope')
    if scope:
        cfg.model.setdefault('_scope_', scope)
    return cfg
