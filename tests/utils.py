"""Helpers for the tests: running the tools and reading what they logged."""
import glob
import json
import os
import os.path as osp
import subprocess
import sys
from typing import Dict, List, Optional, Sequence

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))


def run_tool(args: Sequence[str], check: bool = True, timeout: int = 900,
             env: Optional[Dict[str, str]] = None
             ) -> subprocess.CompletedProcess:
    """Run ``python <args>`` from the repository root (``env``: variables
    to set on top of this process's)."""
    env = dict(os.environ, PYTHONWARNINGS='ignore', OMP_NUM_THREADS='2',
               **(env or {}))
    proc = subprocess.run([sys.executable, *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(
            f'{" ".join(args)} failed ({proc.returncode}):\n'
            f'{proc.stdout[-4000:]}\n{proc.stderr[-6000:]}')
    return proc


def read_scalars(work_dir: str) -> List[Dict[str, float]]:
    """The train/val scalars MMEngine logged under ``work_dir``."""
    rows = []
    # <timestamp>.json from LoggerHook (scalars.json repeats it).
    for path in sorted(glob.glob(osp.join(work_dir, '*', 'vis_data',
                                          '2*.json'))):
        with open(path) as f:
            rows += [json.loads(line) for line in f if line.strip()]
    return rows


def read_test_metrics(work_dir: str) -> Dict[str, float]:
    """The metrics that a test run wrote (work_dir/<timestamp>/<ts>.json)."""
    paths = sorted(glob.glob(osp.join(work_dir, '*', '*.json')))
    assert paths, f'no test metrics under {work_dir}'
    with open(paths[-1]) as f:
        metrics = json.load(f)
    return {k: v for k, v in metrics.items() if k not in ('time', 'data_time')}


def coco_options(root: str, size: int = 128) -> List[str]:
    """--cfg-options that point a stock COCO config at ``root`` and shrink
    it for CPU: image size, one worker-less epoch, logging every iteration.
    """
    root = root.rstrip('/') + '/'
    ann = root + 'annotations/instances_val2017.json'
    scale = f'({size},{size})'
    options = [
        f'{split}_dataloader.dataset.data_root={root}'
        for split in ('train', 'val', 'test')
    ]
    options += [
        f'val_evaluator.ann_file={ann}',
        f'test_evaluator.ann_file={ann}',
        f'train_dataloader.dataset.pipeline.2.scale={scale}',
        f'val_dataloader.dataset.pipeline.1.scale={scale}',
        f'test_dataloader.dataset.pipeline.1.scale={scale}',
        'train_dataloader.batch_size=2',
    ]
    for split in ('train', 'val', 'test'):
        options += [
            f'{split}_dataloader.num_workers=0',
            f'{split}_dataloader.persistent_workers=False'
        ]
    options += ['train_cfg.max_epochs=1', 'default_hooks.logger.interval=1']
    return options


def cityscapes_options(root: str) -> List[str]:
    """--cfg-options that point a stock Cityscapes config at ``root`` and
    shrink it for CPU: 64 x 128 crops of 128 x 256 images, 2 iterations."""
    root = root.rstrip('/') + '/'
    options = [
        f'{split}_dataloader.dataset.data_root={root}'
        for split in ('train', 'val', 'test')
    ]
    options += [
        'train_dataloader.dataset.pipeline.2.scale=(256,128)',
        'train_dataloader.dataset.pipeline.3.crop_size=(64,128)',
        # The runner hands the top-level preprocessor to the algorithm.
        'data_preprocessor.size=(64,128)',
        'val_dataloader.dataset.pipeline.1.scale=(256,128)',
        'test_dataloader.dataset.pipeline.1.scale=(256,128)',
        'train_dataloader.batch_size=2',
        'train_cfg.max_iters=2', 'train_cfg.val_interval=2',
        'default_hooks.logger.interval=1',
        'default_hooks.checkpoint.interval=2',
    ]
    for split in ('train', 'val', 'test'):
        options += [
            f'{split}_dataloader.num_workers=0',
            f'{split}_dataloader.persistent_workers=False'
        ]
    return options


def save_random_model(cfg_path: str, path: str, seed: int = 0) -> str:
    """Save the weights of a randomly initialised model of a stock config."""
    import torch
    from mmengine.hub import get_model

    import mmdist  # noqa: F401
    torch.manual_seed(seed)
    model = get_model(cfg_path, pretrained=False)
    torch.save(dict(state_dict=model.state_dict()), path)
    return path


def mim_path(package: str, *parts: str) -> str:
    """A file shipped inside an installed OpenMMLab package (.mim/...)."""
    import importlib
    module = importlib.import_module(package)
    return osp.join(osp.dirname(module.__file__), '.mim', *parts)


def check_stock_tool_agrees(config: str, checkpoint: str, package: str,
                            stock_config: str, options: List[str],
                            student_options: List[str], tmp_dir: str,
                            stock_out: str,
                            compare_predictions) -> Dict[str, float]:
    """Convert the student, then evaluate it with the package's own test tool
    and the distillation checkpoint with tools/test.py; both must agree.

    Args:
        config: The distillation config.
        checkpoint: A checkpoint of it.
        package: 'mmdet' or 'mmseg'.
        stock_config: The student's stock config, relative to .mim/configs.
        options: --cfg-options for both tools (data, sizes).
        student_options: --cfg-options for the student, given without the
            'model.' / 'model.architecture.' prefix.
        tmp_dir: Where to write.
        stock_out: The --out of the stock tool, under tmp_dir (mmdet: a
            .pkl file, mmseg: a folder of predicted label maps).
        compare_predictions: Called with our predictions (a list) and the
            path of the stock tool's.

    Returns:
        The metrics.
    """
    import pickle

    import torch
    student = osp.join(tmp_dir, 'student.pth')
    run_tool(['tools/convert_student.py', checkpoint, student])
    converted = torch.load(student, map_location='cpu', weights_only=True)
    assert converted['state_dict'] and not any(
        k.startswith(('architecture.', 'teacher.', 'distiller.'))
        for k in converted['state_dict'])
    ours_pkl, theirs_out = osp.join(tmp_dir, 'ours.pkl'), osp.join(
        tmp_dir, stock_out)
    run_tool(['tools/test.py', config, checkpoint, '--work-dir',
              osp.join(tmp_dir, 'ours'), '--out', ours_pkl,
              '--cfg-options', *options,
              *[f'model.architecture.{o}' for o in student_options]])
    run_tool([mim_path(package, 'tools', 'test.py'),
              mim_path(package, 'configs', stock_config), student,
              '--work-dir', osp.join(tmp_dir, 'theirs'), '--out', theirs_out,
              '--cfg-options', *options,
              *[f'model.{o}' for o in student_options]])
    ours = read_test_metrics(osp.join(tmp_dir, 'ours'))
    theirs = read_test_metrics(osp.join(tmp_dir, 'theirs'))
    assert ours and ours == theirs
    with open(ours_pkl, 'rb') as f:
        predictions = pickle.load(f)
    assert predictions
    compare_predictions(predictions, theirs_out)
    return ours


def compare_detections(ours: list, theirs_pkl: str) -> None:
    """Both tools predicted the same boxes, scores and labels."""
    import pickle

    import torch
    with open(theirs_pkl, 'rb') as f:
        theirs = pickle.load(f)
    assert len(ours) == len(theirs)
    for a, b in zip(ours, theirs):
        assert len(a['pred_instances']['scores']) > 0
        for key in ('bboxes', 'scores', 'labels'):
            torch.testing.assert_close(a['pred_instances'][key],
                                       b['pred_instances'][key])


def compare_label_maps(ours: list, theirs_dir: str) -> None:
    """mmseg's tool wrote the same label maps as our predictions hold."""
    import cv2
    import numpy as np
    for prediction in ours:
        name = osp.splitext(osp.basename(prediction['img_path']))[0]
        theirs = cv2.imread(osp.join(theirs_dir, name + '.png'),
                            cv2.IMREAD_UNCHANGED)
        assert theirs is not None, name
        mine = prediction['pred_sem_seg']['data'][0].numpy()
        np.testing.assert_array_equal(mine, theirs)
