"""mmdeploy's task processor and ONNX Runtime model for a student config,
and the test runner that evaluates the exported model (tools/test.py
--onnx)."""
import importlib.util
import os.path as osp
from typing import Optional

import torch
from mmengine.config import Config

from .agreement import clip_to_image
from .student import DEPLOY_CONFIGS, deploy_config_dir


class DeployError(Exception):
    """Bad input, or an export that failed: what was wrong, and what to
    do."""


def check_deploy_installed() -> None:
    """Raise :class:`DeployError` naming the install command where the
    deploy extra (mmdeploy, onnx, onnxruntime) is missing."""
    missing = [name for name in ('mmdeploy', 'onnx', 'onnxruntime')
               if importlib.util.find_spec(name) is None]
    if missing:
        raise DeployError(
            f'{", ".join(missing)} not installed: exporting and running the '
            "student under ONNX Runtime needs mmdist's deploy extra: make "
            'install DEPLOY=1 (or pip install -e ".[deploy]")')


# The task whose outputs a deploy config's codebase gives.
CODEBASE_TASKS = dict(mmdet='detection', mmyolo='yolo', mmseg='segmentation',
                      mmpretrain='classification')


def load_deploy_config(task: Optional[str],
                       path: Optional[str] = None) -> Config:
    """``path``, or mmdist's deploy config for ``task``."""
    path = path or osp.join(deploy_config_dir(), DEPLOY_CONFIGS[task])
    if not osp.isfile(path):
        raise DeployError(f'deploy config not found: {path}')
    return Config.fromfile(path)


def task_of_deploy_config(deploy_cfg: Config) -> str:
    """The task of a deploy config's codebase (``'custom'`` for another)."""
    codebase = (deploy_cfg.get('codebase_config') or {}).get('type')
    return CODEBASE_TASKS.get(codebase, 'custom')


def task_processor(student_cfg: Config, deploy_cfg: Config):
    """mmdeploy's task processor of the student on the CPU."""
    from mmdeploy.apis.utils import build_task_processor
    return build_task_processor(student_cfg, deploy_cfg, 'cpu')


def _clip_detections(module: torch.nn.Module, args, kwargs, output):
    if isinstance(output, list) and kwargs.get('mode', 'predict') == \
            'predict':
        for sample in output:
            if 'pred_instances' in sample:
                clip_to_image(sample)
    return output


def onnx_model(processor, deploy_cfg: Config, onnx_file: str,
               task: str) -> torch.nn.Module:
    """The exported model under ONNX Runtime (CPU) as an MMEngine model
    (mmdeploy's ``End2EndModel``: ``test_step`` gives the task's data
    samples). A detector's boxes are clipped to the image, as PyTorch's
    are (:func:`clip_to_image`)."""
    if not osp.isfile(onnx_file):
        raise DeployError(f'ONNX file not found: {onnx_file}')
    model = processor.build_backend_model(
        [onnx_file],
        data_preprocessor_updater=processor.update_data_preprocessor)
    if task in ('detection', 'yolo'):
        model.register_forward_hook(_clip_detections, with_kwargs=True)
    return model.eval()


def onnx_test_runner(student_cfg: Config, deploy_cfg: Config, task: str,
                     onnx_file: str, work_dir: str):
    """An MMEngine Runner (mmdeploy's test runner: no DDP wrapper) that
    evaluates ``onnx_file`` under ONNX Runtime on the student config's test
    data with its ``test_evaluator``."""
    processor = task_processor(student_cfg, deploy_cfg)
    model = onnx_model(processor, deploy_cfg, onnx_file, task)
    return processor.build_test_runner(
        model, work_dir, log_file=None, show=False, show_dir=None,
        wait_time=0, interval=1, dataloader=student_cfg.test_dataloader)
