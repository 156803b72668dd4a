"""Turn a distillation checkpoint into a plain student checkpoint."""
import os
import os.path as osp
from collections import OrderedDict

import torch
from mmengine.runner.checkpoint import _load_checkpoint

_PLAIN = (str, int, float, bool, type(None))


def _plain(value: object) -> bool:
    """Whether ``value`` is built from Python's plain types only."""
    if isinstance(value, _PLAIN):
        return True
    if isinstance(value, (list, tuple)):
        return all(_plain(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _plain(v) for k, v in value.items())
    return False


def convert_student(checkpoint: str, out: str,
                    prefix: str = 'architecture.') -> int:
    """Write the student of ``checkpoint`` to ``out``.

    Args:
        checkpoint: A checkpoint saved while training a distillation
            algorithm (keys ``<prefix>...`` for the student).
        out: The student checkpoint to write: ``state_dict`` with the prefix
            removed and ``meta`` with the plain ``dataset_meta`` only.
        prefix: The student's key prefix.

    Returns:
        The number of tensors written.
    """
    if not osp.isfile(checkpoint):
        raise FileNotFoundError(f'checkpoint not found: {checkpoint}')
    source = _load_checkpoint(checkpoint, map_location='cpu')
    state_dict = source.get('state_dict', source)
    student = OrderedDict(
        (k[len(prefix):], v.detach().clone())
        for k, v in state_dict.items()
        if k.startswith(prefix) and isinstance(v, torch.Tensor))
    if not student:
        raise ValueError(
            f'{checkpoint} has no keys starting with {prefix!r}: it is not '
            'a distillation checkpoint (or pass --prefix)')
    meta = {}
    dataset_meta = source.get('meta', {}).get('dataset_meta')
    if dataset_meta is not None and _plain(dataset_meta):
        meta['dataset_meta'] = dataset_meta
    tmp = out + '.tmp'
    os.makedirs(osp.dirname(osp.abspath(out)), exist_ok=True)
    try:
        torch.save(dict(meta=meta, state_dict=student), tmp)
        # What mmdet's and mmseg's test tools do on torch >= 2.6.
        torch.load(tmp, map_location='cpu', weights_only=True)
    except BaseException:
        if osp.exists(tmp):
            os.remove(tmp)
        raise
    os.replace(tmp, out)
    return len(student)
