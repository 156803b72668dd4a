"""Loading and checking the teacher before any training starts."""
import os.path as osp
from typing import Dict, List, Optional

import torch
from mmengine.runner.checkpoint import _load_checkpoint
from torch import nn

# Where OpenMMLab detectors and segmenters keep their class count.
_HEAD_PATHS = ('bbox_head', 'roi_head.bbox_head', 'decode_head',
               'auxiliary_head')


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


def check_same_classes(student: nn.Module, teacher: nn.Module) -> None:
    """Raise a ValueError when a head of both models has other classes."""
    student_classes = head_num_classes(student)
    teacher_classes = head_num_classes(teacher)
    for path in student_classes.keys() & teacher_classes.keys():
        if student_classes[path] != teacher_classes[path]:
            raise ValueError(
                f'student and teacher must predict the same classes, but the '
                f'student {path} has num_classes={student_classes[path]} and '
                f'the teacher {path} has num_classes='
                f'{teacher_classes[path]}. Give both configs the same '
                'dataset classes.')


def _strip_prefix(state_dict: Dict[str, torch.Tensor],
                  prefix: str) -> Dict[str, torch.Tensor]:
    if state_dict and all(k.startswith(prefix) for k in state_dict):
        return {k[len(prefix):]: v for k, v in state_dict.items()}
    return state_dict


def _describe(keys: List[str], limit: int = 5) -> str:
    shown = ', '.join(keys[:limit])
    return shown + (f', ... ({len(keys)} in all)' if len(keys) > limit else '')


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
    is_url = '://' in filename
    if not is_url and not osp.isfile(filename):
        raise FileNotFoundError(
            f'teacher checkpoint not found: {filename}. Download the '
            "teacher's weights (the config's teacher_ckpt default is the "
            'OpenMMLab model-zoo URL) or point the config at a local file: '
            '--cfg-options model.teacher_ckpt=/path/to/teacher.pth')
    try:
        checkpoint = _load_checkpoint(filename, map_location='cpu')
    except Exception as exc:
        raise ValueError(f'could not read the teacher checkpoint {filename}: '
                         f'{exc}') from exc
    state_dict = checkpoint.get('state_dict', checkpoint) if isinstance(
        checkpoint, dict) else None
    if not isinstance(state_dict, dict) or not all(
            isinstance(v, torch.Tensor) for v in state_dict.values()):
        raise ValueError(
            f'the teacher checkpoint {filename} holds no state dict of '
            'tensors (expected {"state_dict": {name: tensor}} or '
            '{name: tensor})')
    state_dict = _strip_prefix(state_dict, 'module.')
    own = teacher.state_dict()
    # Old checkpoints lack BN's num_batches_tracked, which eval never uses.
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
        problems.append(
            f'shape mismatch (checkpoint vs teacher): {_describe(mismatched)}')
    if problems:
        raise ValueError(
            f'the teacher checkpoint {filename} does not fit the teacher '
            f'model ({type(teacher).__name__}): ' + '; '.join(problems) +
            '. Check that teacher_ckpt belongs to the teacher config.')
    teacher.load_state_dict(state_dict, strict=False)
