"""tools/deploy.py and tools/test.py --onnx: a student of each task exported
through mmdeploy, checked under ONNX Runtime against PyTorch, evaluated on
generated data; bad input refused before any work, nothing left behind.

The students are the demos' (configs/demo/), with random weights: what is
checked is that ONNX Runtime computes what PyTorch computes."""
import json
import os
import os.path as osp
import pickle
import re

import pytest
import torch

from mmdist.apis.deploy import TOLERANCES
from mmdist.apis.deploy.agreement import compare_detections
from tests.utils import (REPO, mim_path, read_test_metrics, run_tool,
                         save_random_model)

DEMO = osp.join(REPO, 'configs', 'demo')
DIST_DET = osp.join(DEMO, 'dist_retinanet_r18_toy.py')
STUDENTS = {
    'detection': osp.join(DEMO, 'retinanet_r18_toy.py'),
    'segmentation': osp.join(DEMO, 'deeplabv3_r18_toy.py'),
    'classification': osp.join(DEMO, 'resnet18_toy.py'),
}
ENV = dict(PYTHONPATH=REPO)  # tests.user_models
OUTPUTS = {'end2end.onnx', 'student.pth', 'model_config.py',
           'deploy_config.py', 'report.json', 'report.md'}

pytest.importorskip('mmdeploy', reason='the deploy extra: make install '
                    'DEPLOY=1 (make test installs it)')


@pytest.fixture(scope='module')
def checkpoints(module_tmp):
    """Random students of the demo configs; the detector's also as a
    distillation checkpoint (its keys under 'architecture.', the teacher
    left out as mmdist's checkpoints leave it)."""
    folder = module_tmp('checkpoints')
    paths = {task: save_random_model(config, str(folder / f'{task}.pth'))
             for task, config in STUDENTS.items()}
    state = torch.load(paths['detection'], map_location='cpu',
                       weights_only=True)['state_dict']
    distilled = str(folder / 'distilled.pth')
    torch.save(dict(meta=dict(), state_dict={
        f'architecture.{k}': v for k, v in state.items()}), distilled)
    paths['distilled'] = distilled
    # The demo's teacher, for its latency (random weights, loaded).
    paths['teacher'] = save_random_model(
        osp.join(DEMO, 'retinanet_r34_toy_teacher.py'),
        str(folder / 'teacher.pth'))
    return paths


def deploy(args, check=True):
    return run_tool(['tools/deploy.py', *args], check=check, env=ENV)


def report(out):
    assert set(os.listdir(out)) == OUTPUTS
    with open(osp.join(out, 'report.json')) as f:
        return json.load(f)


@pytest.fixture(scope='module')
def shapes_coco(module_tmp) -> str:
    """The detection demo's data set, small: its three shape classes."""
    from mmdist.datasets import make_coco
    root = str(module_tmp('coco') / 'coco')
    make_coco(root, num_train=1, num_val=4, image_size=(64, 64), seed=0,
              shape_classes=True)
    return root


def test_distilled_detector_exports_agrees_and_evaluates(
        checkpoints, shapes_coco, tmp_path):
    out = str(tmp_path / 'retinanet')
    done = deploy([DIST_DET, checkpoints['distilled'], '--out', out,
                   '--benchmark', '--repeat', '1', '--threads', '1',
                   '--cfg-options',
                   f"model.teacher_ckpt={checkpoints['teacher']}"])
    assert 'Within the tolerances.' in done.stdout
    result = report(out)
    assert result['passed'] and result['task'] == 'detection'
    agreement = result['agreement']
    assert agreement['boxes_pytorch'] > 0 and agreement['matched'] >= 0.98
    rows = {(r['model'], r['runtime']) for r in result['latency']['rows']}
    assert rows == {('student', 'ONNX Runtime'),
                    ('student', 'PyTorch (eager)'),
                    ('teacher', 'PyTorch (eager)')}
    assert result['latency']['threads'] == 1
    # The student's checkpoint is the distillation checkpoint's student.
    saved = torch.load(osp.join(out, 'student.pth'), map_location='cpu',
                       weights_only=True)['state_dict']
    assert saved and not any(k.startswith('architecture.') for k in saved)

    # On a data set, through MMEngine's evaluator: the exported model's
    # predictions are the PyTorch student's, and so is its mAP.
    ann = f'{shapes_coco}/annotations/instances_val2017.json'
    options = [f'test_dataloader.dataset.data_root={shapes_coco}/',
               f'test_evaluator.ann_file={ann}']
    onnx_pkl = str(tmp_path / 'onnx.pkl')
    torch_pkl = str(tmp_path / 'torch.pkl')
    onnx_file = osp.join(out, 'end2end.onnx')
    run_tool(['tools/test.py', DIST_DET, '--onnx', onnx_file, '--work-dir',
              str(tmp_path / 'onnx'), '--out', onnx_pkl, '--cfg-options',
              *options], env=ENV)
    run_tool(['tools/test.py', STUDENTS['detection'],
              osp.join(out, 'student.pth'), '--work-dir',
              str(tmp_path / 'torch'), '--out', torch_pkl,
              '--cfg-options', *options], env=ENV)
    onnx_metrics = read_test_metrics(str(tmp_path / 'onnx'))
    torch_metrics = read_test_metrics(str(tmp_path / 'torch'))
    for key, value in torch_metrics.items():
        assert abs(onnx_metrics[key] - value) <= 0.001, key
    predictions = []
    for path in (torch_pkl, onnx_pkl):
        with open(path, 'rb') as f:
            predictions.append([_Sample(p) for p in pickle.load(f)])
    pooled = compare_detections(*predictions)
    assert pooled['boxes_pytorch'] > 0
    assert pooled['matched'] >= 0.98 and pooled['min_iou'] >= 0.99


class _Sample:
    """A dumped prediction as the comparison reads one."""

    def __init__(self, dumped: dict) -> None:
        from mmengine.structures import InstanceData
        self.pred_instances = InstanceData(**dumped['pred_instances'])


@pytest.mark.parametrize('task', ['segmentation', 'classification'])
def test_stock_student_exports_and_agrees(task, checkpoints, tmp_path):
    out = str(tmp_path / task)
    done = deploy([STUDENTS[task], checkpoints[task], '--out', out])
    assert 'Within the tolerances.' in done.stdout
    result = report(out)
    assert result['passed'] and result['task'] == task
    for key, bound in TOLERANCES[task].items():
        value = result['agreement'][key]
        assert value <= bound if key.startswith('max_') else value >= bound


def test_disagreement_beyond_a_tolerance_exits_non_zero(
        checkpoints, tmp_path, monkeypatch):
    # A bound below any difference: whatever the export computes is beyond.
    monkeypatch.setitem(TOLERANCES['classification'], 'max_prob_diff', -1.0)
    out = str(tmp_path / 'strict')
    done = deploy([STUDENTS['classification'], checkpoints['classification'],
                   '--out', out], check=False)
    assert done.returncode == 1
    assert 'NOT within the tolerances: max_prob_diff' in done.stdout
    assert report(out)['passed'] is False


@pytest.mark.parametrize('case', [
    'missing_checkpoint', 'checkpoint_of_another_model', 'masks',
    'no_mmdeploy', 'unexportable_user_model'
])
def test_bad_input_stops_before_any_work(case, checkpoints, tmp_path,
                                         monkeypatch):
    config, checkpoint = STUDENTS['detection'], checkpoints['detection']
    if case == 'missing_checkpoint':
        checkpoint = str(tmp_path / 'nothing.pth')
        expected = 'checkpoint not found'
    elif case == 'checkpoint_of_another_model':
        checkpoint = checkpoints['classification']
        expected = ('the student checkpoint .* does not fit the student '
                    r'model \(RetinaNet\): missing keys')
    elif case == 'masks':
        config = mim_path('mmdet', 'configs', 'mask_rcnn',
                          'mask-rcnn_r50_fpn_1x_coco.py')
        expected = (r'the student of .* is MaskRCNN \(a detector with a mask '
                    r'head\): give a deploy config of your own')
    elif case == 'no_mmdeploy':
        import importlib.util
        find_spec = importlib.util.find_spec
        monkeypatch.setattr(
            importlib.util, 'find_spec',
            lambda name, *a: None if name == 'mmdeploy' else find_spec(
                name, *a))
        expected = r'mmdeploy not installed: .* make install DEPLOY=1'
    else:
        config = str(tmp_path / 'spectral.py')
        with open(config, 'w') as f:
            f.write(f"_base_ = '{STUDENTS['classification']}'\n"
                    "custom_imports = dict(imports=['tests.user_models'])\n"
                    "model = dict(neck=dict(_delete_=True, "
                    "type='TestSpectralPooling'))\n")
        checkpoint = save_random_model(config, str(tmp_path / 'user.pth'))
        expected = (r'mmdeploy could not export the student ImageClassifier '
                    r'of .*spectral\.py \(classification\): '
                    r"UnsupportedOperatorError: .*'aten::fft_rfft2'")
    out = tmp_path / 'out'
    done = deploy([config, checkpoint, '--out', str(out)], check=False)
    assert done.returncode == 2, done.stderr[-3000:]
    assert re.search(expected, done.stderr), done.stderr[-3000:]
    assert not out.exists()
    assert not [n for n in os.listdir(tmp_path) if n.startswith('.deploy-')]
