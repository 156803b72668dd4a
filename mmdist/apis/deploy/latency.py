"""Latency of the exported student, the PyTorch student and its teachers.

Each model runs its whole prediction on the same preprocessed batch of one
image: ``test_step`` (normalisation, the network, the post-processing: NMS,
resizing, softmax) under ``torch.no_grad``, with torch and ONNX Runtime on
the same number of threads. The figure is the median of ``repeat`` runs
after ``warmup`` runs.
"""
import contextlib
import copy
import os.path as osp
import platform
import statistics
import time
from typing import Callable, Iterator, Optional

import torch
from torch import nn

from mmdist.models.algorithms.teacher_utils import load_teacher_checkpoint
from .student import Student, build_model, is_distillation, teacher_configs


def median_ms(run: Callable[[], object], repeat: int = 10,
              warmup: int = 2) -> float:
    """The median wall time of ``run()`` in milliseconds."""
    if repeat < 1:
        raise ValueError(f'repeat must be at least 1, got {repeat}')
    for _ in range(warmup):
        run()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


@contextlib.contextmanager
def torch_threads(threads: Optional[int]) -> Iterator[int]:
    """torch on ``threads`` threads inside the block (None: as it is);
    yields the count in use."""
    before = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        yield torch.get_num_threads()
    finally:
        torch.set_num_threads(before)


def set_onnx_threads(backend_model: torch.nn.Module, onnx_file: str,
                     threads: int) -> None:
    """Give an mmdeploy ONNX Runtime model (CPU) a session of its graph on
    ``threads`` intra-op threads; mmdeploy's has ONNX Runtime's default,
    one per core."""
    import os.path as osp

    import onnxruntime as ort
    from mmdeploy.backend.onnxruntime.init_plugins import get_ops_path
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    if osp.exists(get_ops_path()):  # as mmdeploy's session has them
        options.register_custom_ops_library(get_ops_path())
    wrapper = backend_model.wrapper
    wrapper.sess = ort.InferenceSession(
        onnx_file, options, providers=wrapper.sess.get_providers())
    wrapper.io_binding = wrapper.sess.io_binding()


def time_test_step(model: torch.nn.Module, data: dict, repeat: int,
                   warmup: int = 2) -> float:
    """Median milliseconds of ``model.test_step(data)``."""
    def run():
        with torch.no_grad():
            model.test_step(data)
    return median_ms(run, repeat, warmup)


def cpu_name() -> str:
    """The processor's model name (Linux), else its architecture."""
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('model name'):
                    return line.split(':', 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def measure(student: Student, torch_model: nn.Module, backend: nn.Module,
            onnx_file: str, data: dict, repeat: int,
            threads: Optional[int]) -> dict:
    """Median latency (ms) of the student under ONNX Runtime and PyTorch,
    and of each teacher under PyTorch, on one preprocessed image."""
    with torch_threads(threads) as used:
        set_onnx_threads(backend, onnx_file, used)
        shape = torch_model.data_preprocessor(
            copy.deepcopy(data))['inputs'].shape[-2:]
        rows = [
            dict(model='student', runtime='ONNX Runtime',
                 ms=time_test_step(backend, data, repeat)),
            dict(model='student', runtime='PyTorch (eager)',
                 ms=time_test_step(torch_model, data, repeat)),
        ]
        if is_distillation(student.cfg):
            for name, model_cfg, scope, ckpt in teacher_configs(
                    student.cfg):
                teacher = build_model(model_cfg, scope)
                loaded = bool(ckpt) and osp.isfile(ckpt)
                if loaded:  # a detector's NMS work depends on its weights
                    load_teacher_checkpoint(teacher, ckpt)
                rows.append(dict(
                    model=name if loaded else f'{name} (random weights)',
                    runtime='PyTorch (eager)',
                    ms=time_test_step(teacher, data, repeat)))
            from mmengine.registry import init_default_scope
            init_default_scope(student.student_cfg.get('default_scope'))
    return dict(rows=rows, input_size=list(shape), threads=used,
                repeat=repeat, cpu=cpu_name())


def checkpoint_latency(config: str, checkpoint: str, options: dict,
                       repeat: int = 50) -> dict:
    """The PyTorch latency of the model that ``checkpoint`` holds (the
    student of a distillation checkpoint) on the first image of
    ``config``'s test data: median milliseconds of ``test_step``.

    Args:
        config: The config the checkpoint was trained with.
        checkpoint: Its checkpoint.
        options: Keys of ``config`` to override (its data root, say).
        repeat: Runs the median is taken of.
    """
    from mmengine.config import Config
    from mmengine.dataset import pseudo_collate
    from mmengine.registry import DATASETS

    from .student import student_config, student_weights
    cfg = Config.fromfile(config)
    cfg.merge_from_dict(options)
    cfg = student_config(cfg)
    model = build_model(cfg.model, cfg.get('default_scope'))
    model.load_state_dict(student_weights(model, checkpoint), strict=False)
    data = pseudo_collate([DATASETS.build(cfg.test_dataloader.dataset)[0]])
    shape = model.data_preprocessor(copy.deepcopy(data))['inputs'].shape
    return dict(ms=time_test_step(model, data, repeat),
                input_size=list(shape[-2:]), threads=torch.get_num_threads(),
                repeat=repeat)
