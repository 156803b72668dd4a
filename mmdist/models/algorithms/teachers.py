"""The frozen teachers of a distillation: how they are given, built, loaded,
saved (or not) and recognised again on resume.

One teacher is ``teacher=dict(...)`` with ``teacher_ckpt`` and
``teacher_precision`` beside it (``model.teacher`` is the model); several
are ``teachers=dict(<name>=dict(cfg_path=... or type=..., ckpt=...,
precision=...), ...)`` (``model.teacher`` is a :class:`TeacherGroup` of
them, so that recorders name their modules ``<name>.<module>``).
"""
import dataclasses
import hashlib
import json
import os.path as osp
from typing import Dict, List, Optional, Tuple, Union
from urllib.parse import urlparse

import torch
from mmengine.model import BaseModel
from torch import nn

from .fold_bn import Folded, fold_state_dict
from .teacher_utils import teacher_config

# Accepted values of a teacher's precision.
AUTOCAST_DTYPES = {
    None: None,
    'bfloat16': torch.bfloat16,
    'float16': torch.float16
}
# The keys of a teacher of ``teachers`` that are not its model's.
_TEACHER_KEYS = ('ckpt', 'precision')


@dataclasses.dataclass
class TeacherInfo:
    """What mmdist keeps of one teacher besides its module.

    Attributes:
        name: Its name in ``teachers``; None for the one ``teacher``.
        ckpt: The checkpoint its weights came from (path or URL).
        dtype: The autocast dtype of its forward (None: the student's).
        folded: Its BatchNorm folded into convolutions.
        sha256: The content hash of its checkpoint file.
    """
    name: Optional[str]
    ckpt: Optional[str]
    dtype: Optional[torch.dtype]
    folded: List[Folded] = dataclasses.field(default_factory=list)
    sha256: Optional[str] = None

    @property
    def who(self) -> str:
        """How messages name it."""
        return 'the teacher' if self.name is None else \
            f'teacher {self.name!r}'

    @property
    def prefix(self) -> str:
        """Its modules' prefix under the algorithm's ``teacher``."""
        return '' if self.name is None else f'{self.name}.'


class TeacherGroup(BaseModel):
    """Several teachers side by side as one module, each under its name
    (MMRazor's algorithm takes one teacher model and hooks its recorders
    into it by module names).

    Args:
        teachers: The teacher models by name.
    """

    def __init__(self, teachers: Dict[str, nn.Module]) -> None:
        super().__init__()
        for name, teacher in teachers.items():
            if hasattr(self, name):
                raise ValueError(f'teachers: {name!r} is taken (a module '
                                 'attribute); name the teacher otherwise')
            self.add_module(name, teacher)

    def __getitem__(self, name: str) -> nn.Module:
        return self._modules[name]

    def forward(self, *args, **kwargs):
        raise TypeError('several teachers run one by one: '
                        'FrozenTeacherDistill.teacher_forward')


def _dtype(precision: Optional[str], option: str) -> Optional[torch.dtype]:
    if precision not in AUTOCAST_DTYPES:
        raise ValueError(
            f'{option}={precision!r}; expected one of '
            f'{sorted(map(str, AUTOCAST_DTYPES))} (None keeps the student\'s '
            'precision)')
    return AUTOCAST_DTYPES[precision]


def _model_and_ckpt(teacher: dict,
                    ckpt: Optional[str]) -> Tuple[dict, Optional[str]]:
    """A teacher's model config and checkpoint: a ``cfg_path`` teacher is
    its config's model (and, with ``pretrained=True``, its zoo weights)."""
    if isinstance(teacher, dict) and 'cfg_path' in teacher:
        cfg = teacher_config(teacher)
        return cfg.model, ckpt or cfg.get('model_path')
    return teacher, ckpt


def teacher_specs(teacher: Optional[object], teachers: Optional[dict],
                  teacher_ckpt: Optional[str],
                  teacher_precision: Optional[str]
                  ) -> Dict[Optional[str], Tuple[object, TeacherInfo]]:
    """Each teacher's model (config or module) and :class:`TeacherInfo`,
    by name (None for the one ``teacher``).

    Raises:
        ValueError: Both or neither of ``teacher`` and ``teachers``, options
            of one teacher beside several, or a teacher that is not
            understood.
    """
    if (teacher is None) == (teachers is None):
        raise ValueError(
            'give teacher=dict(...) (one teacher) or teachers=dict(<name>='
            'dict(cfg_path=..., ckpt=...), ...) (several), not both')
    if teacher is not None:
        model, ckpt = _model_and_ckpt(teacher, teacher_ckpt)
        return {None: (model, TeacherInfo(None, ckpt, _dtype(
            teacher_precision, 'teacher_precision')))}
    if teacher_ckpt or teacher_precision:
        raise ValueError(
            'with several teachers, give each its own checkpoint and '
            'precision: teachers.<name>.ckpt, teachers.<name>.precision '
            '(teacher_ckpt and teacher_precision are for one teacher)')
    if not isinstance(teachers, dict) or not teachers:
        raise ValueError('teachers must be a non-empty dict {name: dict('
                         'cfg_path=... or type=..., ckpt=..., precision='
                         '...)}')
    specs = {}
    for name, spec in teachers.items():
        if not isinstance(name, str) or not name.isidentifier():
            raise ValueError(f'teachers: {name!r} is no name (a Python '
                             'identifier, used in module paths and logs)')
        if not isinstance(spec, dict) or not ('cfg_path' in spec
                                              or 'type' in spec):
            raise ValueError(
                f'teachers.{name} must be dict(cfg_path=..., ckpt=...) or a '
                'model config dict(type=..., ckpt=...)')
        spec = dict(spec)
        options = {key: spec.pop(key, None) for key in _TEACHER_KEYS}
        model, ckpt = _model_and_ckpt(spec, options['ckpt'])
        specs[name] = (model, TeacherInfo(name, ckpt, _dtype(
            options['precision'], f'teachers.{name}.precision')))
    return specs


def file_sha256(filename: str) -> str:
    """The SHA-256 of a checkpoint's contents: a local file's, or for a URL
    the file MMEngine downloaded it to (torch hub's cache)."""
    if '://' in filename:
        filename = osp.join(torch.hub.get_dir(), 'checkpoints',
                            osp.basename(urlparse(filename).path))
    digest = hashlib.sha256()
    with open(filename, 'rb') as f:
        for block in iter(lambda: f.read(1 << 22), b''):
            digest.update(block)
    return digest.hexdigest()


def _teacher_keys(state_dict: dict, prefix: str) -> List[str]:
    return [k for k in state_dict if k.startswith(prefix)]


def leave_out_teachers(module: nn.Module, state_dict: dict, prefix: str,
                       local_metadata: dict) -> None:
    """State-dict hook: a teacher loaded from its checkpoint is not saved
    again (building the model loads it, on resume too)."""
    for info in module.teacher_infos:
        if info.ckpt:
            for key in _teacher_keys(state_dict,
                                     f'{prefix}teacher.{info.prefix}'):
                del state_dict[key]


def keep_loaded_teachers(module: nn.Module, state_dict: dict, prefix: str,
                         *args) -> None:
    """Load pre-hook: a checkpoint without a teacher's weights leaves that
    teacher as it is; one with them (older mmdist, MMRazor) loads them,
    folded as the teacher is when they were saved unfolded."""
    for info in module.teacher_infos:
        own = f'{prefix}teacher.{info.prefix}'
        if not _teacher_keys(state_dict, own):
            teacher = module.teacher_module(info.name)
            for name, value in teacher.state_dict().items():
                state_dict[own + name] = value
        elif info.folded:
            fold_state_dict(state_dict, info.folded, own)


def identities(infos: List[TeacherInfo]) -> Dict[str, dict]:
    """What a checkpoint records of each teacher loaded from a file."""
    return {str(info.name or ''): dict(ckpt=info.ckpt, sha256=info.sha256)
            for info in infos if info.sha256}


def encode_identities(saved: Dict[str, dict]) -> torch.Tensor:
    """:func:`identities` as a uint8 tensor of JSON: a model's state dict
    must hold tensors only, since MMEngine's Runner broadcasts every entry
    of it from rank 0 after ``init_weights``. Every rank reads the same
    files, so the tensor has the same size on each."""
    text = json.dumps(dict(teachers=saved), sort_keys=True)
    return torch.tensor(list(text.encode()), dtype=torch.uint8)


def decode_identities(state: Union[torch.Tensor, dict, None]
                      ) -> Dict[str, dict]:
    """What :func:`encode_identities` wrote (or the dict that earlier
    checkpoints held)."""
    if isinstance(state, torch.Tensor):
        state = json.loads(bytes(state.cpu().tolist()).decode())
    return (state or {}).get('teachers', {})


def check_identities(infos: List[TeacherInfo], saved: Dict[str, dict],
                     allowed: bool) -> List[str]:
    """Compare the teachers' files with what a checkpoint recorded.

    Args:
        infos: This model's teachers.
        saved: What :func:`identities` wrote into the checkpoint.
        allowed: Go on with changed teachers (returned, to be logged).

    Returns:
        One line per teacher whose file changed (when ``allowed``).

    Raises:
        RuntimeError: A teacher's file changed, naming it, both hashes and
            the option that goes on with it.
    """
    changed = []
    for info in infos:
        before = saved.get(str(info.name or ''))
        if before is None or info.sha256 is None:
            continue
        if before['sha256'] != info.sha256:
            changed.append(
                f"{info.who}: the checkpoint was trained with {before['ckpt']}"
                f" (sha256 {before['sha256']}), and {info.ckpt} now holds "
                f'sha256 {info.sha256}')
    if changed and not allowed:
        raise RuntimeError(
            'the teacher changed since this checkpoint was saved: '
            + '; '.join(changed) + '. Resuming would distil from another '
            'teacher than the run began with. Point the teacher back at the '
            'same file, or, to go on with the new teacher on purpose, set '
            '--cfg-options model.allow_teacher_change=True.')
    return changed
