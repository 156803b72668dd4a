"""On a CUDA GPU (scripts/gpu_check.sh): the four settings train through
tools/train.py with validation, in float32 and with --amp; every mmcv op
they call on CUDA has a torch version in mmdist, and tools/check_ops.py
runs the zoo families of the rarer ops on CUDA; the DIST loss on CUDA
equals its CPU result. The stand-ins' values on CUDA are checked against
mmcv's recorded kernels in tests/test_ops (``-m gpu``)."""
import glob
import os.path as osp
import re

import pytest
import torch

import mmdist  # noqa: F401
from mmdist.ops.ext import OPS
from mmdist.testing import (SETTINGS, build_setting, make_batch,
                            record_mmcv_ops, setting_config,
                            train_and_predict)
from tests.utils import (cityscapes_options, coco_options, read_scalars,
                         run_tool, save_random_model)

pytestmark = pytest.mark.gpu
DEVICE = 'cuda'  # the device under test


def mmcv_has_cuda() -> bool:
    import mmcv._ext as ext
    return ext.get_compiling_cuda_version() != 'not available'


def mmcv_is_compiled() -> bool:
    import mmcv._ext as ext
    return not getattr(ext, 'MMDIST_STANDIN', False)


@pytest.fixture(scope='module')
def teacher_ckpt(module_tmp):
    """Saves (once per teacher config) a randomly initialised teacher: with
    no checkpoint, the Runner would initialise the teacher's backbone from
    ImageNet weights, which it cannot download here."""
    saved = {}

    def get(setting):
        cfg_path = setting_config(setting).model.teacher.cfg_path
        if cfg_path not in saved:
            saved[cfg_path] = save_random_model(
                cfg_path, str(module_tmp('teacher') / 'ckpt.pth'))
        return saved[cfg_path]
    return get


@pytest.mark.parametrize('amp', [False, True], ids=['fp32', 'amp'])
@pytest.mark.parametrize('setting', SETTINGS, ids=lambda s: s.name)
def test_setting_trains_and_validates_on_cuda(setting, amp, coco_root,
                                              cityscapes_root, teacher_ckpt,
                                              tmp_path):
    work_dir = str(tmp_path / 'work_dir')
    if setting.task == 'det':
        # Random weights score below the stock thresholds: keep every box.
        test_cfg = 'test_cfg.rcnn' if setting.name == 'faster_rcnn' \
            else 'test_cfg'
        options = coco_options(coco_root, size=256) + [
            'model.architecture.backbone.init_cfg=None',
            f'model.architecture.{test_cfg}.score_thr=0.0',
            'train_cfg.val_interval=1']
    else:
        options = cityscapes_options(cityscapes_root) + [
            'model.architecture.pretrained=None']
    options.append(f'model.teacher_ckpt={teacher_ckpt(setting)}')
    proc = run_tool(['tools/train.py', setting.config, '--work-dir',
                     work_dir, *(['--amp'] if amp else []),
                     '--cfg-options', *options])
    rows = read_scalars(work_dir)
    train = [r for r in rows if 'loss' in r]
    assert len(train) >= 2
    for row in train:
        distill = [k for k in row if k.startswith('distill.loss')]
        assert distill and all(row[k] == row[k] and abs(row[k]) < 1e6
                               for k in distill + ['loss'])
    metric = 'coco/bbox_mAP' if setting.task == 'det' else 'mIoU'
    assert any(metric in r for r in rows), rows[-1]
    checkpoints = sorted(glob.glob(osp.join(work_dir, '*.pth')))
    assert checkpoints
    state = torch.load(checkpoints[-1], map_location='cpu',
                       weights_only=True)
    # MMEngine's AmpOptimWrapper keeps its loss scaler beside the optimizer.
    assert ('loss_scaler' in state['optimizer']) == amp
    log = proc.stdout + proc.stderr
    if setting.task == 'det' and mmcv_is_compiled() and not mmcv_has_cuda():
        # Each routed op says so once.
        for op in ('nms',) + (('sigmoid_focal_loss_forward',)
                              if setting.name == 'retinanet' else
                              ('roi_align_forward',)):
            said = re.findall(f'mmcv op {op} runs through torch/torchvision '
                              'on ' + DEVICE, log)
            assert len(said) == 1, (op, len(said))


@pytest.mark.parametrize('setting', SETTINGS, ids=lambda s: s.name)
def test_cuda_ops_of_each_setting_have_a_torch_version(setting):
    size = (256, 256) if setting.task == 'det' else (128, 256)
    model = build_setting(setting, 'mmdist', image_size=size).cuda()
    with record_mmcv_ops() as called:
        train_and_predict(model, make_batch(setting, 2, size))
    assert called <= set(OPS), called
    if setting.name == 'retinanet':
        assert {'nms', 'sigmoid_focal_loss_forward',
                'sigmoid_focal_loss_backward'} <= called
    if setting.name == 'faster_rcnn':
        assert {'nms', 'roi_align_forward', 'roi_align_backward'} <= called


def test_check_ops_runs_every_family_on_cuda(module_tmp):
    # tools/check_ops.py on CUDA: the paper's settings and the zoo
    # families of the rarer ops predict and train, every op provided.
    import json

    from tests.test_tools.test_check_ops import FAMILIES
    out = module_tmp('check_ops_cuda') / 'reports.json'
    run_tool(['tools/check_ops.py', *FAMILIES, '--device', 'cuda', '--out',
              str(out)])
    for report in json.loads(out.read_text()):
        assert report['ok'], report
        assert report['missing'] == []
        for name in FAMILIES[report['config']]:
            assert 'cuda' in report['ops'][name], (report['config'], name)


@pytest.mark.parametrize('activation,shape', [
    ('sigmoid', (2, 720, 100, 168)),   # RetinaNet P3 at 1333 x 800
    ('softmax', (2, 19, 64, 128)),     # Cityscapes logits at stride 8
    ('softmax', (1024, 81)),           # RoIs
])
def test_dist_loss_on_cuda_equals_cpu(activation, shape):
    from mmdist.models.losses import DISTLoss
    g = torch.Generator().manual_seed(0)
    s = torch.randn(shape, generator=g) * 2
    t = torch.randn(shape, generator=g) * 2
    loss = DISTLoss(activation=activation, log_terms=True)
    results = []
    for device in ('cpu', DEVICE):
        x = s.to(device, copy=True).requires_grad_(True)
        out = loss(x, t.to(device))
        out['loss'].backward()
        results.append((out, x.grad.cpu()))
    (cpu, cpu_grad), (cuda, cuda_grad) = results
    for key in ('loss', 'inter', 'intra'):
        torch.testing.assert_close(cuda[key].cpu(), cpu[key], rtol=1e-4,
                                   atol=1e-6)
    torch.testing.assert_close(cuda_grad, cpu_grad, rtol=1e-3, atol=1e-9)
    with torch.autocast(DEVICE, dtype=torch.float16):
        half = loss(s.to(DEVICE).half(), t.to(DEVICE).half())
    assert half['loss'].dtype == torch.float32
    torch.testing.assert_close(half['loss'].cpu(), cpu['loss'], rtol=2e-3,
                               atol=1e-4)


def test_teacher_in_bfloat16_on_cuda():
    setting = SETTINGS[0]
    model = build_setting(setting, 'mmdist', 'bfloat16', (256, 256)).cuda()
    data = model.data_preprocessor(make_batch(setting, 2, (256, 256)), True)
    losses = model.loss(data['inputs'], data['data_samples'])
    record = model.distiller.get_record
    assert record('logits_cls', False).dtype == torch.bfloat16
    assert record('logits_cls', True).dtype == torch.float32
    for key, value in losses.items():
        if key.startswith('distill.loss'):
            assert value.dtype == torch.float32 and torch.isfinite(value)
