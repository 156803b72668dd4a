"""tools/deploy.py: the student to ONNX through mmdeploy, checked under
ONNX Runtime against PyTorch, with its latency.

Everything the run needs is checked before any work (the files, the deploy
extra, the exporter, the task, the checkpoint against the student); the
outputs are written in a temporary folder beside ``out`` and moved there
once the export has worked, so a failed run leaves nothing half-written.
"""
import copy
import json
import os
import os.path as osp
import shutil
import tempfile
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from mmengine.config import Config
from torch import nn

from mmdist.compat import check_torchscript_exporter, mmdeploy_export
from mmdist.models.algorithms.teacher_utils import model_task
from .agreement import COMPARE, TOLERANCES, failures
from .backend import (DeployError, check_deploy_installed,
                      load_deploy_config, onnx_model, task_processor)
from .latency import measure
from .report import make_report, summary
from .student import (DEPLOY_CONFIGS, Student, build_model, deploy_task,
                      student_config, student_weights, what_it_is)

OUTPUTS = ('end2end.onnx', 'student.pth', 'model_config.py',
           'deploy_config.py', 'report.json', 'report.md')


def _check_file(path: str, what: str) -> None:
    if not osp.isfile(path):
        raise DeployError(f'{what} not found: {path}')


def prepare(config: str, checkpoint: str, deploy_cfg: Optional[str] = None,
            images: Sequence[str] = (),
            options: Optional[dict] = None) -> Student:
    """Every check before the export: the files, the deploy extra, the
    exporter, a deploy config for the student's task, the checkpoint
    against the student.

    Raises:
        DeployError: What is wrong and what to do about it.
    """
    _check_file(config, 'config')
    _check_file(checkpoint, 'checkpoint')
    for image in images:
        _check_file(image, 'image')
    if deploy_cfg:
        _check_file(deploy_cfg, 'deploy config')
    check_deploy_installed()
    try:
        check_torchscript_exporter()
    except RuntimeError as exc:
        raise DeployError(str(exc)) from exc
    cfg = Config.fromfile(config)
    if options:
        cfg.merge_from_dict(options)
    scfg = student_config(cfg)
    model = build_model(scfg.model, scfg.get('default_scope'))
    task = deploy_task(model, scfg)
    if task is None and not deploy_cfg:
        raise DeployError(
            f'mmdist has deploy configs for {", ".join(DEPLOY_CONFIGS)}; the '
            f'student of {config} is {what_it_is(model)}: give a deploy '
            'config of your own for it with --deploy-cfg (mmdeploy\'s '
            'configs for its task, in its repository)')
    try:
        state_dict = student_weights(model, checkpoint)
    except (ValueError, FileNotFoundError) as exc:
        raise DeployError(str(exc)) from exc
    # With a deploy config of the user's, the outputs are compared as the
    # model's library predicts them (a masked detector's boxes, say).
    compared = task or model_task(model) or 'custom'
    return Student(config, cfg, scfg, model, compared,
                   load_deploy_config(task, deploy_cfg), state_dict)


def _pipeline_size(cfg: Config) -> Optional[Tuple[int, int]]:
    """(height, width) of an image that the test pipeline's resize keeps
    as it is; where it resizes nothing, the training pipeline's size."""
    train = ((cfg.get('train_dataloader') or {}).get('dataset')
             or {}).get('pipeline') or []
    for pipeline in (cfg.get('test_pipeline') or [], train):
        for step in pipeline:
            scale = step.get('scale', step.get('crop_size'))
            if isinstance(scale, (list, tuple)) and len(scale) == 2:
                return int(scale[1]), int(scale[0])  # (w, h) in OpenMMLab
            if isinstance(scale, int):  # ResizeEdge, RandomResizedCrop
                return scale, scale
    return None


def test_images(student: Student, files: Sequence[str] = (),
                count: int = 2, seed: int = 0) -> List[Tuple[str,
                                                             np.ndarray]]:
    """The images to check on: ``files``, or ``count`` generated ones in
    the test pipeline's size (shapes on a textured background, as the
    generated data sets)."""
    import cv2

    from mmdist.datasets import synthetic_image
    if files:
        images = []
        for path in files:
            image = cv2.imread(path)
            if image is None:
                raise DeployError(f'not an image OpenCV can read: {path}')
            images.append((path, image))
        return images
    height, width = _pipeline_size(student.student_cfg) or (480, 640)
    return [(f'generated_{i}', synthetic_image(height, width, seed + i))
            for i in range(count)]


def export(student: Student, work_dir: str, checkpoint: str,
           image: np.ndarray) -> str:
    """Export with mmdeploy (its TorchScript-based exporter) to
    ``work_dir/end2end.onnx``.

    Raises:
        DeployError: mmdeploy's error, naming the model and the config.
    """
    from mmdeploy.apis import torch2onnx
    with mmdeploy_export():
        try:
            torch2onnx(image, work_dir, 'end2end.onnx', student.deploy_cfg,
                       student.student_cfg, checkpoint, 'cpu')
        except Exception as exc:
            raise DeployError(
                f'mmdeploy could not export the student '
                f'{type(student.model).__name__} of {student.config} '
                f'({student.task}): {type(exc).__name__}: {exc}') from exc
    return osp.join(work_dir, 'end2end.onnx')


def _samples(model: nn.Module, data: dict) -> list:
    with torch.no_grad():
        return model.test_step(copy.deepcopy(data))


def check(student: Student, onnx_file: str, checkpoint: str,
          images: List[Tuple[str, np.ndarray]], benchmark: bool = False,
          repeat: int = 10, threads: Optional[int] = None) -> dict:
    """The exported model and the PyTorch student on ``images``: their
    agreement, and with ``benchmark`` their latency and the teachers'."""
    processor = task_processor(student.student_cfg, student.deploy_cfg)
    torch_model = processor.build_pytorch_model(checkpoint)
    backend = onnx_model(processor, student.deploy_cfg, onnx_file,
                         student.task)
    inputs = [processor.create_input(image, None)[0] for _, image in images]
    ours = [s for data in inputs for s in _samples(torch_model, data)]
    theirs = [s for data in inputs for s in _samples(backend, data)]
    compare = COMPARE.get(student.task)
    agreement = compare(ours, theirs) if compare else {}
    problems = failures(student.task, agreement) if compare else []
    result = dict(agreement=agreement, failures=problems,
                  tolerances=TOLERANCES.get(student.task, {}))
    if benchmark:
        result['latency'] = measure(student, torch_model, backend,
                                    onnx_file, inputs[0], repeat, threads)
    return result


def _plain_checkpoint(state_dict: Dict[str, torch.Tensor], source: str,
                      path: str) -> None:
    """The student alone, as its library's tools load it (tensors and the
    source's plain ``dataset_meta``, as tools/convert_student.py writes)."""
    from mmengine.runner.checkpoint import _load_checkpoint

    from mmdist.apis.convert import _plain
    meta = {}
    loaded = _load_checkpoint(source, map_location='cpu')
    dataset_meta = (loaded.get('meta') or {}).get('dataset_meta') if \
        isinstance(loaded, dict) else None
    if dataset_meta is not None and _plain(dataset_meta):
        meta['dataset_meta'] = dataset_meta
    torch.save(dict(meta=meta, state_dict=state_dict), path)


def deploy_student(config: str, checkpoint: str, out: str,
                   images: Sequence[str] = (),
                   deploy_cfg: Optional[str] = None,
                   num_images: int = 2, benchmark: bool = False,
                   repeat: int = 10, threads: Optional[int] = None,
                   seed: int = 0, options: Optional[dict] = None) -> dict:
    """Export the student of ``config`` (a distillation or a stock config)
    with the weights of ``checkpoint`` to ``out/end2end.onnx``, check it
    under ONNX Runtime against PyTorch, and write the student's checkpoint,
    its config, the deploy config and a report beside it. ``options``
    override keys of ``config``, as ``--cfg-options`` do.

    Returns:
        The report (also ``out/report.json``); ``report['passed']`` says
        whether the agreement is within :data:`TOLERANCES`.
    """
    student = prepare(config, checkpoint, deploy_cfg, images, options)
    chosen = test_images(student, images, num_images, seed)
    parent = osp.dirname(osp.abspath(out))
    os.makedirs(parent, exist_ok=True)
    work = tempfile.mkdtemp(prefix='.deploy-', dir=parent)
    try:
        student_ckpt = osp.join(work, 'student.pth')
        _plain_checkpoint(student.state_dict, checkpoint, student_ckpt)
        student.student_cfg.dump(osp.join(work, 'model_config.py'))
        student.deploy_cfg.dump(osp.join(work, 'deploy_config.py'))
        onnx_file = export(student, work, student_ckpt, chosen[0][1])
        checked = check(student, onnx_file, student_ckpt, chosen,
                        benchmark, repeat, threads)
        report = make_report(student, checkpoint, out, chosen, checked)
        with open(osp.join(work, 'report.json'), 'w') as f:
            json.dump(report, f, indent=2)
        with open(osp.join(work, 'report.md'), 'w') as f:
            f.write(summary(report) + '\n')
        os.makedirs(out, exist_ok=True)
        for name in OUTPUTS:
            os.replace(osp.join(work, name), osp.join(out, name))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return report
