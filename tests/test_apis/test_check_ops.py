"""mmdist.apis.check_ops: a config's model with random weights reads no
weights anywhere, however deep its configs name them."""
from mmengine.config import Config

from mmdist.apis.check_ops import random_model_config
from tests.utils import REPO


def test_no_weights_are_read_at_any_depth():
    cfg = Config(dict(model=dict(
        type='HybridTaskCascade',
        backbone=dict(type='DetectoRS_ResNet', init_cfg=dict(
            type='Pretrained', checkpoint='torchvision://resnet50')),
        neck=dict(type='RFP', rfp_backbone=dict(
            type='DetectoRS_ResNet', pretrained='torchvision://resnet50',
            init_cfg=[dict(type='Pretrained', checkpoint='x.pth'),
                      dict(type='Constant', val=1, layer='BatchNorm2d')])),
        teachers=dict(a=dict(cfg_path='mmdet::a.py', ckpt='http://a.pth'),
                      b=dict(cfg_path='mmdet::b.py', ckpt=None)),
        teacher_ckpt='t.pth', student_ckpt='s.pth')))
    model = random_model_config(cfg)
    assert model.backbone.init_cfg is None
    rfp = model.neck.rfp_backbone
    assert rfp.pretrained is None
    assert rfp.init_cfg == [dict(type='Constant', val=1, layer='BatchNorm2d')]
    assert model.teachers.a.ckpt is None and model.teachers.b.ckpt is None
    assert model.teachers.a.cfg_path == 'mmdet::a.py'
    assert model.teacher_ckpt is None and model.student_ckpt is None
    # The config itself is left as it was.
    assert cfg.model.teachers.a.ckpt == 'http://a.pth'


def test_the_two_teacher_config_reads_no_checkpoint():
    cfg = Config.fromfile(
        f'{REPO}/configs/dist_retinanet_r50_two-teachers_coco.py')
    model = random_model_config(cfg)
    assert all(spec.ckpt is None for spec in model.teachers.values())
    assert model.architecture.backbone.init_cfg is None
