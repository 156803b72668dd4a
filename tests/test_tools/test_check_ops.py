"""tools/check_ops.py on the default install: the paper's settings and the
zoo families that call mmcv's rarer ops build, predict and take a training
step, each op coming from where the report says; a model that calls an op
nobody provides is reported with the way to get it."""
import json
import textwrap

import pytest

from tests.utils import run_tool

# config -> mmcv ops it must call on CPU (the report's ops may hold more).
FAMILIES = {
    'configs/dist_retinanet_r50_coco.py': {'nms'},
    'configs/dist_faster_rcnn_r50_coco.py': {
        'nms', 'roi_align_forward', 'roi_align_backward'},
    'configs/dist_deeplabv3_r18_cityscapes.py': set(),
    'configs/dist_pspnet_r18_cityscapes.py': set(),
    'configs/dist_resnet18_in1k.py': set(),
    'mmdet::dyhead/atss_r50_fpn_dyhead_1x_coco.py': {
        'modulated_deform_conv_forward', 'modulated_deform_conv_backward'},
    'mmdet::dcn/faster-rcnn_r50_fpn_dpool_1x_coco.py': {
        'deform_roi_pool_forward', 'deform_roi_pool_backward'},
    'mmdet::dcnv2/faster-rcnn_r50_fpn_mdpool_1x_coco.py': {
        'deform_roi_pool_forward', 'deform_roi_pool_backward'},
    'mmdet::carafe/faster-rcnn_r50_fpn-carafe_1x_coco.py': {
        'carafe_forward', 'carafe_backward'},
    # Guided anchoring convolves only where anchors are, at test time.
    'mmdet::guided_anchoring/ga-retinanet_r50-caffe_fpn_1x_coco.py': {
        'masked_im2col_forward', 'masked_col2im_forward'},
    'mmseg::psanet/psanet_r50-d8_4xb2-40k_cityscapes-512x1024.py': {
        'psamask_forward', 'psamask_backward'},
}


def standin() -> bool:
    import mmcv._ext
    return getattr(mmcv._ext, 'MMDIST_STANDIN', False)


@pytest.fixture(scope='module')
def reports(module_tmp):
    out = module_tmp('check_ops') / 'reports.json'
    result = run_tool(['tools/check_ops.py', *FAMILIES, '--device', 'cpu',
                       '--size', '128', '128', '--out', str(out)])
    return {r['config']: r for r in json.loads(out.read_text())}, \
        result.stdout


# No '::' in the ids: pytest-xdist would take what comes before the last
# '::' of a test's id for its module and give each such test its own
# (and the module's fixture its own run of check_ops).
# tools/check_ops.py over every family, a minute: make test-slow.
@pytest.mark.slow
@pytest.mark.parametrize('config', FAMILIES,
                         ids=lambda config: config.replace('::', ':'))
def test_each_family_predicts_and_trains(reports, config):
    report = reports[0][config]
    assert report['ok'] and report['error'] is None
    assert [(s['phase'], s['device'], s['status'])
            for s in report['steps']] == [('predict', 'cpu', 'ok'),
                                          ('train', 'cpu', 'ok')]
    assert FAMILIES[config] <= set(report['ops'])
    source = 'mmdist' if standin() else 'mmcv'
    for name in FAMILIES[config]:
        assert report['ops'][name] == {'cpu': source}, name
    assert report['missing'] == []
    task = ('classification' if 'in1k' in config else 'segmentation'
            if 'cityscapes' in config else 'detection')
    assert report['task'] == task


@pytest.mark.slow
def test_the_printed_report_names_each_op_and_its_source(reports):
    printed = reports[1]
    block = printed.split(
        'config: mmdet::dyhead/atss_r50_fpn_dyhead_1x_coco.py')[1]
    block = block.split('config:')[0]
    assert 'model:  ATSS (detection)' in block
    assert 'predict  on cpu: ok' in block and 'train    on cpu: ok' in block
    source = 'mmdist (torch)' if standin() else 'compiled mmcv'
    assert f'modulated_deform_conv_forward      cpu: {source}' in block


# A user's own segmentor whose neck shifts channels with mmcv's tin_shift,
# an op with CUDA kernels only in mmcv and no torch version in mmdist.
USER_MODULE = '''
from mmcv.ops import tin_shift
from torch import nn
from mmseg.registry import MODELS


@MODELS.register_module()
class ShiftNeck(nn.Module):
    def forward(self, feats):
        n, c, h, w = feats[-1].shape
        shift = feats[-1].new_zeros(n, 2, dtype=int)
        return [tin_shift(feats[-1].reshape(n, 2, c // 2, h, w), shift)
                .reshape(n, c, h, w)]
'''

USER_CONFIG = '''
_base_ = ['mmseg::fcn/fcn_r18-d8_4xb2-80k_cityscapes-512x1024.py']
custom_imports = dict(imports=['shift_neck'], allow_failed_imports=False)
model = dict(neck=dict(type='ShiftNeck'),
             decode_head=dict(in_index=0), auxiliary_head=None)
'''


def test_a_missing_op_is_named_with_the_way_to_get_it(tmp_path):
    (tmp_path / 'shift_neck.py').write_text(USER_MODULE)
    config = tmp_path / 'my_model.py'
    config.write_text(textwrap.dedent(USER_CONFIG))
    out = tmp_path / 'report.json'
    result = run_tool(['tools/check_ops.py', str(config), '--device', 'cpu',
                       '--size', '64', '64', '--out', str(out)],
                      check=False, env=dict(PYTHONPATH=str(tmp_path)))
    assert result.returncode == 1, result.stderr[-3000:]
    report, = json.loads(out.read_text())
    assert report['task'] == 'segmentation'
    assert report['missing'] == ['tin_shift_forward']
    assert report['ops']['tin_shift_forward'] == {'cpu': 'missing'}
    assert [s['status'] for s in report['steps']] == [
        'missing op tin_shift_forward'] * 2
    assert not report['ok']
    assert ('missing: tin_shift_forward. To get them, build mmcv with its '
            'compiled ops') in result.stdout
    assert 'MMDIST_MMCV=full make install' in result.stdout
