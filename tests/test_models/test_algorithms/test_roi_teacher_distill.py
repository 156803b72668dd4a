"""RoITeacherDistill on real mmdet two-stage detectors (R50 backbones, small
images, to keep it quick on CPU)."""
import copy

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope

import mmdist  # noqa: F401
from mmdist.models import RoITeacherDistill
from mmdist.registry import MODELS

STUDENT = 'mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py'
TEACHERS = {
    # (config, recorded classifier of the distilled stage)
    'cascade_mask':
    ('mmdet::cascade_rcnn/cascade-mask-rcnn_r50_fpn_1x_coco.py',
     'roi_head.bbox_head.0.fc_cls'),
    'cascade_no_mask': ('mmdet::cascade_rcnn/cascade-rcnn_r50_fpn_1x_coco.py',
                        'roi_head.bbox_head.0.fc_cls'),
    'one_stage': ('mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py',
                  'roi_head.bbox_head.fc_cls'),
}


def detector(cfg_path):
    from mmengine.hub import get_config
    model = get_config(cfg_path).model
    model.backbone.init_cfg = None
    model._scope_ = 'mmdet'
    return model


def algorithm_cfg(teacher='cascade_mask', extra_teacher_recorders=None):
    teacher_cfg, teacher_cls = TEACHERS[teacher]
    teacher_recorders = dict(
        cls=dict(type='ModuleOutputs', source=teacher_cls),
        **(extra_teacher_recorders or {}))
    return Config(dict(
        type='mmdist.RoITeacherDistill',
        architecture=detector(STUDENT),
        teacher=detector(teacher_cfg),
        distiller=dict(
            type='ConfigurableDistiller',
            student_recorders=dict(
                rois=dict(type='ModuleInputs',
                          source='roi_head.bbox_roi_extractor'),
                cls=dict(type='ModuleOutputs',
                         source='roi_head.bbox_head.fc_cls')),
            teacher_recorders=teacher_recorders,
            distill_losses=dict(
                loss_roi_cls=dict(type='mmdist.DISTLoss', log_terms=True)),
            loss_forward_mappings=dict(
                loss_roi_cls=dict(
                    preds_S=dict(from_student=True, recorder='cls'),
                    preds_T=dict(from_student=False, recorder='cls'))))))


def build(cfg):
    init_default_scope('mmrazor')
    torch.manual_seed(0)
    model = MODELS.build(cfg)
    model.train()
    return model


def batch(model, num_items=(3, 2)):
    from mmdet.testing import demo_mm_inputs
    data = demo_mm_inputs(batch_size=len(num_items),
                          image_shapes=(3, 96, 128), num_items=list(num_items),
                          num_classes=80)
    data = model.data_preprocessor(data, training=True)
    return data['inputs'], data['data_samples']


@pytest.fixture(scope='module')
def cascade_model():
    # Also record the RoIs that the teacher's first-stage extractor gets.
    return build(algorithm_cfg(extra_teacher_recorders=dict(
        rois=dict(type='ModuleInputs',
                  source='roi_head.bbox_roi_extractor.0'))))


def test_teacher_classifies_exactly_the_student_rois(cascade_model):
    model = cascade_model
    calls = {'rpn': 0, 'mask': 0, 'stage1': 0}
    teacher = model.teacher
    teacher.rpn_head.register_forward_hook(
        lambda *a: calls.__setitem__('rpn', calls['rpn'] + 1))
    teacher.roi_head.mask_head[0].register_forward_hook(
        lambda *a: calls.__setitem__('mask', calls['mask'] + 1))
    teacher.roi_head.bbox_head[1].register_forward_hook(
        lambda *a: calls.__setitem__('stage1', calls['stage1'] + 1))

    inputs, samples = batch(model)
    losses = model.loss(inputs, samples)

    distiller = model.distiller
    student_rois = distiller.get_record('rois', True, data_idx=1)
    teacher_rois = distiller.get_record('rois', False, data_idx=1)
    assert student_rois.shape[1] == 5 and len(student_rois) > 0
    # 512 sampled RoIs per image at most (the stock sampler).
    assert len(student_rois) <= 512 * 2
    assert torch.equal(teacher_rois, student_rois)
    student_cls = distiller.get_record('cls', True)
    teacher_cls = distiller.get_record('cls', False)
    assert teacher_cls.shape == student_cls.shape == (len(student_rois), 81)
    assert not teacher_cls.requires_grad and student_cls.requires_grad
    assert calls == {'rpn': 0, 'mask': 0, 'stage1': 0}
    assert torch.isfinite(losses['distill.loss_roi_cls'])
    assert not model.teacher.training


def test_zero_sampled_rois_give_zero_loss(cascade_model):
    from mmdist.models.losses import dist_loss
    model = cascade_model
    inputs, samples = batch(model)
    model.loss(inputs, samples)  # fills the recorders
    recorder = model.distiller.student_recorders.get_recorder('rois')
    feats, rois = recorder.data_buffer[0]
    recorder.data_buffer[0] = (feats, rois[:0])
    with model.distiller.teacher_recorders, torch.no_grad():
        outputs = model.teacher_forward(inputs, samples)
        model.teacher_forward_after_student(inputs, samples, outputs)
    teacher_cls = model.distiller.get_record('cls', False)
    assert teacher_cls.shape == (0, 81)
    student = torch.zeros(0, 81, requires_grad=True)
    loss = dist_loss(student, teacher_cls)
    loss.backward()
    assert loss.item() == 0 and student.grad.shape == (0, 81)


def test_image_without_ground_truth(cascade_model):
    model = cascade_model
    inputs, samples = batch(model, num_items=(0, 3))
    losses = model.loss(inputs, samples)
    assert torch.isfinite(losses['distill.loss_roi_cls'])
    assert torch.isfinite(losses['student.loss_cls'])


@pytest.mark.parametrize('teacher', ['cascade_no_mask', 'one_stage'])
def test_other_teachers(teacher):
    model = build(algorithm_cfg(teacher))
    assert isinstance(model, RoITeacherDistill)
    inputs, samples = batch(model)
    losses = model.loss(inputs, samples)
    assert torch.isfinite(losses['distill.loss_roi_cls'])
    assert losses['distill.roi_cls_inter'] >= 0


def test_class_mismatch_is_refused_at_build():
    cfg = algorithm_cfg()
    for head in cfg.teacher.roi_head.bbox_head:
        head.num_classes = 20
    with pytest.raises(ValueError, match=r'num_classes=80.*num_classes=20'):
        build(cfg)


def test_bad_stage_and_recorder_are_refused():
    cfg = algorithm_cfg('one_stage')
    cfg.teacher_stage = 1
    with pytest.raises(ValueError, match='single stage'):
        build(cfg)
    cfg = algorithm_cfg()
    cfg.student_rois = dict(recorder='proposals', data_idx=1)
    with pytest.raises(ValueError, match="'proposals'"):
        build(cfg)


def test_single_stage_detectors_are_refused():
    cfg = algorithm_cfg()
    cfg.architecture = detector(
        'mmdet::retinanet/retinanet_r18_fpn_1x_coco.py')
    cfg.distiller.student_recorders.cls.source = 'bbox_head.retina_cls'
    cfg.distiller.student_recorders.rois.source = 'bbox_head'
    with pytest.raises(ValueError, match='RoI head'):
        build(copy.deepcopy(cfg))


def test_teacher_method_recorders_are_refused():
    cfg = algorithm_cfg(extra_teacher_recorders=dict(
        feats=dict(type='MethodOutputs',
                   source='mmdet.models.detectors.TwoStageDetector.'
                   'extract_feat')))
    with pytest.raises(ValueError, match="'feats' is a MethodOutputs"):
        build(cfg)


def test_the_generic_algorithm_refuses_an_roi_classifier_at_build():
    """docs/configs.md's generic recipe with a two-stage student: the
    teacher would classify its own proposals; the message names the
    algorithm and the base config that pair the RoIs."""
    cfg = Config(dict(
        type='mmdist.FrozenTeacherDistill',
        architecture=detector(STUDENT),
        teacher=detector(TEACHERS['one_stage'][0]),
        distiller=dict(
            type='mmdist.LogitDistiller',
            logits=dict(cls=dict(
                student='roi_head.bbox_head.fc_cls',
                teacher='roi_head.bbox_head.fc_cls',
                loss=dict(type='mmdist.DISTLoss', activation='softmax'))))))
    with pytest.raises(ValueError, match=r"logits\.cls: the student's "
                       r"'roi_head\.bbox_head\.fc_cls' classifies the RoIs "
                       r"of a two-stage detector \(FasterRCNN\).*"
                       r"type='mmdist\.RoITeacherDistill'.*"
                       r"'mmdist::_base_/roi_distill\.py'"):
        build(cfg)


def test_rows_of_other_samples_are_not_told_to_resize():
    from mmdist.models.distillers.logit_specs import shape_hint
    rows = shape_hint('cls', torch.zeros(1024, 81), torch.zeros(2000, 81))
    assert 'resize' not in rows
    assert 'rows of 1024 and 2000 samples' in rows
    assert 'mmdist.RoITeacherDistill' in rows
    dense = shape_hint('decode', torch.zeros(2, 19, 8, 16),
                       torch.zeros(2, 19, 16, 32))
    assert "logits.decode.resize=dict(to='teacher')" in dense
