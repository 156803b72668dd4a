"""LogitDistiller: the paper configs compute what their hand-written
MMRazor distillers computed; per-level heads, several heads, and the
errors for student/teacher pairs that do not match."""
import copy

import pytest
import torch
from mmengine.config import Config, ConfigDict
from mmengine.registry import init_default_scope

import mmdist  # noqa: F401
from mmdist.models.algorithms import teacher_config
from mmdist.registry import MODELS
from mmdist.testing import SETTINGS, make_batch

# The distillers of the paper configs as they were written by hand, with
# MMRazor's recorders and one loss mapping per level (before LogitDistiller).
LEVELS = (3, 4, 5, 6, 7)


def retinanet_by_hand(loss):
    return dict(
        type='ConfigurableDistiller',
        student_recorders=dict(
            cls=dict(type='ModuleOutputs', source='bbox_head.retina_cls')),
        teacher_recorders=dict(
            cls=dict(type='ModuleOutputs', source='bbox_head.retina_cls')),
        loss_forward_mappings={
            f'loss_p{level}': dict(
                preds_S=dict(from_student=True, recorder='cls', record_idx=i),
                preds_T=dict(from_student=False, recorder='cls',
                             record_idx=i))
            for i, level in enumerate(LEVELS)
        },
        distill_losses={f'loss_p{level}': loss for level in LEVELS})


def faster_rcnn_by_hand(loss):
    return dict(
        type='ConfigurableDistiller',
        student_recorders=dict(
            rois=dict(type='ModuleInputs',
                      source='roi_head.bbox_roi_extractor'),
            cls=dict(type='ModuleOutputs',
                     source='roi_head.bbox_head.fc_cls')),
        teacher_recorders=dict(
            cls=dict(type='ModuleOutputs',
                     source='roi_head.bbox_head.0.fc_cls')),
        loss_forward_mappings=dict(
            loss_roi_cls=dict(
                preds_S=dict(from_student=True, recorder='cls'),
                preds_T=dict(from_student=False, recorder='cls'))),
        distill_losses=dict(loss_roi_cls=loss))


def cityscapes_by_hand(decode, aux, ignored=False):
    distiller = dict(
        type='ConfigurableDistiller',
        student_recorders=dict(
            logits=dict(type='ModuleOutputs', source='decode_head.conv_seg'),
            aux_logits=dict(type='ModuleOutputs',
                            source='auxiliary_head.conv_seg')),
        teacher_recorders=dict(
            logits=dict(type='ModuleOutputs', source='decode_head.conv_seg'),
            aux_logits=dict(type='ModuleOutputs',
                            source='auxiliary_head.conv_seg')),
        loss_forward_mappings=dict(
            loss_decode=dict(
                preds_S=dict(from_student=True, recorder='logits'),
                preds_T=dict(from_student=False, recorder='logits')),
            loss_aux=dict(
                preds_S=dict(from_student=True, recorder='aux_logits'),
                preds_T=dict(from_student=False, recorder='aux_logits'))),
        distill_losses=dict(loss_decode=decode, loss_aux=aux))
    if ignored:
        distiller['student_recorders']['gt'] = dict(
            type='MethodOutputs',
            source='mmseg.models.decode_heads.decode_head.'
            'BaseDecodeHead._stack_batch_gt')
        for name in ('loss_decode', 'loss_aux'):
            distiller['loss_forward_mappings'][name]['gt_labels'] = dict(
                from_student=True, recorder='gt')
    return distiller


def dist(activation, weight=1.0, **kwargs):
    return dict(type='mmdist.DISTLoss', activation=activation, beta=1.0,
                gamma=1.0, tau=1.0, loss_weight=weight, log_terms=True,
                **kwargs)


def kd(activation, weight=1.0):
    return dict(type='mmdist.KDLoss', activation=activation, tau=1.0,
                loss_weight=weight)


def mimic_by_hand():
    return Config.fromfile('configs/_base_/fpn_mimic.py').mimic_distiller


def with_mimic(distiller):
    merged = Config(dict(d=distiller))
    merged.merge_from_dict(dict(d=mimic_by_hand()))
    return merged.d.to_dict()


DET = {s.name: s for s in SETTINGS}
CASES = {
    'dist_retinanet': ('configs/dist_retinanet_r50_coco.py',
                       retinanet_by_hand(dist('sigmoid'))),
    'dist_retinanet_anchor_rows': (
        'configs/dist_retinanet_r50_coco_anchor_rows.py',
        retinanet_by_hand(dist('sigmoid', num_classes=80))),
    'kd_retinanet': ('configs/kd_retinanet_r50_coco.py',
                     retinanet_by_hand(kd('sigmoid'))),
    'dist_mimic_retinanet': ('configs/dist_mimic_retinanet_r50_coco.py',
                             with_mimic(retinanet_by_hand(dist('sigmoid')))),
    'dist_faster_rcnn': ('configs/dist_faster_rcnn_r50_coco.py',
                         faster_rcnn_by_hand(dist('softmax'))),
    'kd_faster_rcnn': ('configs/kd_faster_rcnn_r50_coco.py',
                       faster_rcnn_by_hand(kd('softmax'))),
    'dist_mimic_faster_rcnn': (
        'configs/dist_mimic_faster_rcnn_r50_coco.py',
        with_mimic(faster_rcnn_by_hand(dist('softmax')))),
    'dist_deeplabv3': ('configs/dist_deeplabv3_r18_cityscapes.py',
                       cityscapes_by_hand(dist('softmax'),
                                          dist('softmax', 0.4))),
    'dist_deeplabv3_skip255': (
        'configs/dist_deeplabv3_r18_cityscapes_skip255.py',
        cityscapes_by_hand(dist('softmax', ignore_index=255),
                           dist('softmax', 0.4, ignore_index=255),
                           ignored=True)),
    'kd_pspnet': ('configs/kd_pspnet_r18_cityscapes.py',
                  cityscapes_by_hand(kd('softmax'), kd('softmax', 0.4))),
    'dist_pspnet': ('configs/dist_pspnet_r18_cityscapes.py',
                    cityscapes_by_hand(dist('softmax'),
                                       dist('softmax', 0.4))),
}


def build(model_cfg):
    init_default_scope('mmrazor')
    model = MODELS.build(copy.deepcopy(model_cfg))
    model.train()
    return model


def model_config(config):
    cfg = Config.fromfile(config)
    cfg.model.teacher_ckpt = None
    architecture = cfg.model.architecture
    if 'backbone' in architecture and 'init_cfg' in architecture.backbone:
        architecture.backbone.init_cfg = None
    if 'pretrained' in architecture:
        architecture.pretrained = None
    return cfg


def losses(model, data):
    torch.manual_seed(0)  # the RoI sampler draws
    processed = model.data_preprocessor(data, True)
    out = model.loss(processed['inputs'], processed['data_samples'])
    # RetinaNet's own losses are lists, one per level: MMEngine sums them.
    return {k: sum(v).detach() if isinstance(v, list) else v.detach()
            for k, v in out.items()}


@pytest.mark.parametrize('case', sorted(CASES))
def test_paper_config_computes_what_the_hand_written_distiller_did(case):
    config, by_hand = CASES[case]
    cfg = model_config(config)
    new = build(cfg.model)
    assert type(new.distiller).__name__ == 'LogitDistiller'
    old_cfg = copy.deepcopy(cfg.model)
    old_cfg.distiller = ConfigDict(by_hand)
    old = build(old_cfg)
    old.load_state_dict(new.state_dict())
    task = 'seg' if 'cityscapes' in config else 'det'
    setting = next(s for s in SETTINGS if s.task == task)
    size = (64, 128) if task == 'seg' else (96, 128)
    if task == 'seg':
        for model in (new, old):
            model.data_preprocessor.size = size
    data = make_batch(setting, batch_size=2, image_size=size)
    ours, theirs = losses(new, data), losses(old, data)

    def close(a, b, what):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-6, msg=what)

    student = [k for k in theirs if k.startswith('student.')]
    assert student
    for key in student:
        close(ours[key], theirs[key], key)
    if 'retinanet' in case:
        levels = [theirs[f'distill.loss_p{level}'] for level in LEVELS]
        for i, value in enumerate(levels):
            close(ours[f'distill.cls_l{i}'], value, f'level {i}')
        close(ours['distill.loss_cls'], sum(levels), 'sum')
        if case.startswith('dist'):
            for term in ('inter', 'intra'):
                close(ours[f'distill.cls_{term}'],
                      sum(theirs[f'distill.p{level}_{term}']
                          for level in LEVELS), term)
        same_names = {k: v for k, v in theirs.items() if 'mimic' in k}
    else:
        same_names = theirs
    for key, value in same_names.items():
        if key.startswith('distill.'):
            close(ours[key], value, key)
    # What trains, the sum of every logged "loss" (MMEngine's rule), is the
    # same.
    close(sum(v for k, v in ours.items() if 'loss' in k),
          sum(v for k, v in theirs.items() if 'loss' in k), 'total loss')


RETINANET = 'mmdet::retinanet/retinanet_r50_fpn_1x_coco.py'
R18 = dict(backbone=dict(depth=18, init_cfg=None),
           neck=dict(in_channels=[64, 128, 256, 512]))


def algorithm(student_cfg_path, teacher, logits, **student_overrides):
    student = teacher_config(dict(cfg_path=student_cfg_path,
                                  **student_overrides)).model
    return build(dict(
        type='mmdist.FrozenTeacherDistill', architecture=student,
        teacher=teacher,
        distiller=dict(type='mmdist.LogitDistiller', logits=logits)))


def det_losses(model, size=96):
    data = make_batch(DET['retinanet'], batch_size=2, image_size=(size, size))
    processed = model.data_preprocessor(data, True)
    return model.loss(processed['inputs'], processed['data_samples'])


def test_per_level_modules_of_a_module_list():
    """RTMDet keeps one classification conv per level (bbox_head.rtm_cls,
    a ModuleList): each is recorded and distilled with its partner."""
    rtmdet = 'mmdet::rtmdet/rtmdet_tiny_8xb32-300e_coco.py'
    model = algorithm(
        rtmdet,
        dict(cfg_path='mmdet::rtmdet/rtmdet_s_8xb32-300e_coco.py',
             backbone=dict(init_cfg=None)),
        dict(cls=dict(student='bbox_head.rtm_cls',
                      teacher='bbox_head.rtm_cls',
                      loss=dict(type='mmdist.DISTLoss',
                                activation='sigmoid'))),
        backbone=dict(init_cfg=None))
    student, teacher = model.distiller._recorders('cls')
    assert student.per_level and len(student.modules) == 3
    losses = det_losses(model)
    pairs = model.distiller.level_pairs('cls')
    assert len(pairs) == 3
    loss = model.distiller.logit_losses['cls']
    for level, (s, t) in enumerate(pairs):
        # The level's own conv computed it: 80 classes at its stride.
        assert s.shape[1] == 80 and s.shape[-1] == 96 // (8 << level)
        torch.testing.assert_close(losses[f'distill.cls_l{level}'],
                                   loss(s, t).detach())
    torch.testing.assert_close(
        losses['distill.loss_cls'].detach(),
        sum(losses[f'distill.cls_l{i}'] for i in range(3)))
    losses['distill.loss_cls'].backward()
    assert all(conv.weight.grad is not None
               for conv in model.student.bbox_head.rtm_cls)


def test_several_heads_each_with_its_weight():
    model = algorithm(
        RETINANET, dict(cfg_path=RETINANET, **R18),
        dict(cls=dict(student='bbox_head.retina_cls',
                      teacher='bbox_head.retina_cls',
                      loss=dict(type='mmdist.DISTLoss',
                                activation='sigmoid', loss_weight=1.0)),
             reg=dict(student='bbox_head.retina_reg',
                      teacher='bbox_head.retina_reg',
                      loss=dict(type='mmdist.DISTLoss',
                                activation='softmax', loss_weight=0.4))),
        **R18)
    losses = det_losses(model)
    assert {'distill.loss_cls', 'distill.loss_reg'} <= set(losses)
    unweighted = sum(
        model.distiller.logit_losses['reg'].loss_weight ** -1 *
        model.distiller.logit_losses['reg'](s, t).detach()
        for s, t in model.distiller.level_pairs('reg'))
    torch.testing.assert_close(losses['distill.loss_reg'].detach(),
                               0.4 * unweighted)


@pytest.mark.parametrize('detector,generator,logits', [
    # RTMDet on two levels against three; RetinaNet with 6 anchors a
    # position (2 scales) against the student's 9.
    ('mmdet::rtmdet/rtmdet_tiny_8xb32-300e_coco.py',
     dict(strides=[8, 16]), 'bbox_head.rtm_cls'),
    (RETINANET, dict(scales_per_octave=2), 'bbox_head.retina_cls')],
    ids=['rtmdet', 'retinanet'])
def test_another_anchor_layout_fails_at_build(detector, generator, logits):
    # Dense logits pair anchor by anchor: the algorithm compares the two
    # detectors' anchors before the distiller's levels or channels.
    teacher = dict(cfg_path=detector, backbone=dict(init_cfg=None),
                   bbox_head=dict(anchor_generator=generator))
    with pytest.raises(ValueError, match=r"the teacher's anchor layout "
                       r"differs from the student's .* Pick a teacher whose "
                       r'bbox_head.anchor_generator'):
        algorithm(detector, teacher,
                  dict(cls=dict(student=logits, teacher=logits,
                                loss=dict(type='mmdist.DISTLoss'))),
                  backbone=dict(init_cfg=None))


def test_logits_of_another_shape_fail_at_build():
    # The student's classification logits (9 anchors x 80 classes) against
    # the teacher's box regression (9 x 4).
    with pytest.raises(ValueError, match=r"the student's 'bbox_head\."
                       r"retina_cls' .* outputs 720 channels and the "
                       r"teacher's 'bbox_head\.retina_reg' .* 36"):
        algorithm(RETINANET, dict(cfg_path=RETINANET, **R18),
                  dict(cls=dict(student='bbox_head.retina_cls',
                                teacher='bbox_head.retina_reg',
                                loss=dict(type='mmdist.DISTLoss'))), **R18)


def test_calls_that_do_not_pair_fail_at_the_first_iteration():
    # The detector calls bbox_head.forward directly: no hook sees a call.
    model = algorithm(
        RETINANET, dict(cfg_path=RETINANET, **R18),
        dict(cls=dict(student='bbox_head.retina_cls', teacher='bbox_head',
                      loss=dict(type='mmdist.DISTLoss'))), **R18)
    with pytest.raises(ValueError, match=r"the student's 'bbox_head\."
                       r"retina_cls' ran 5 time\(s\) in this iteration and "
                       r"the teacher's 'bbox_head' 0"):
        det_losses(model)


@pytest.mark.parametrize('spec, message', [
    (dict(student='bbox_head.retina_cls', loss=dict(type='mmdist.DISTLoss')),
     r"missing \['teacher'\]"),
    (dict(student='bbox_head.retina_cls', teacher='bbox_head.retina_cls',
          teachers=dict(a='bbox_head.retina_cls'),
          loss=dict(type='mmdist.DISTLoss')),
     'gives both teacher and teachers'),
    (dict(student='bbox_head.retina_cls', teacher='bbox_head.retina_cls',
          loss=dict(type='mmdist.DISTLoss'), weight=0.4),
     r"unknown \['weight'\]"),
])
def test_entries_need_student_teacher_and_loss(spec, message):
    with pytest.raises(ValueError, match=message):
        build(dict(type='mmdist.LogitDistiller', logits=dict(cls=spec)))


def test_entry_names_stay_out_of_the_total():
    spec = dict(student='bbox_head.retina_cls', teacher='bbox_head.retina_cls',
                loss=dict(type='mmdist.DISTLoss'))
    with pytest.raises(ValueError, match='must not contain "loss"'):
        build(dict(type='mmdist.LogitDistiller', logits=dict(cls_loss=spec)))


def test_a_module_the_model_lacks_is_named():
    with pytest.raises(AttributeError, match=r"'bbox_head\.retina_clss' is "
                       'not a module of RetinaNet'):
        algorithm(RETINANET, dict(cfg_path=RETINANET, **R18),
                  dict(cls=dict(student='bbox_head.retina_clss',
                                teacher='bbox_head.retina_cls',
                                loss=dict(type='mmdist.DISTLoss'))), **R18)


SEGFORMER_TEACHER = ('configs/dist_deeplabv3_r18_segformer-mit-b5_'
                     'cityscapes.py')


def segformer_teacher_config(size=(64, 128)):
    cfg = model_config(SEGFORMER_TEACHER)
    cfg.model.architecture.data_preprocessor.size = size  # pads to it
    return cfg


def recorded_logits(model):
    """The raw student and teacher logits of the last iteration."""
    student, teacher = model.distiller._recorders('decode')
    (s, ), (t, ) = student.data_buffer, teacher.data_buffer
    return s, t


def test_segformer_teacher_logits_at_another_resolution_are_resized():
    from mmdist.models.losses.dist_loss import dist_loss
    model = build(segformer_teacher_config().model)
    data = make_batch(DET['deeplabv3'], batch_size=2, image_size=(64, 128))
    out = losses(model, data)
    s, t = recorded_logits(model)
    # DeepLabV3-D8 at 1/8 of the 64 x 128 input, SegFormer at 1/4.
    assert (s.shape, t.shape) == ((2, 19, 8, 16), (2, 19, 16, 32))
    up = torch.nn.functional.interpolate(s.detach(), (16, 32),
                                         mode='bilinear', align_corners=False)
    # Dense logits: every position one row, as the distiller passes them.
    expected = dist_loss(up, t.detach(), activation='softmax')
    torch.testing.assert_close(out['distill.loss_decode'], expected,
                               rtol=1e-6, atol=1e-7)
    assert 'distill.loss_aux' not in out


def test_logits_at_another_resolution_name_the_resize_option():
    cfg = segformer_teacher_config()
    cfg.model.distiller.logits.decode.pop('resize')
    model = build(cfg.model)
    data = make_batch(DET['deeplabv3'], batch_size=2, image_size=(64, 128))
    with pytest.raises(ValueError, match=r"\(2, 19, 8, 16\) and the "
                       r"teacher's 'decode_head\.conv_seg' \(2, 19, 16, 32\)"
                       r".*logits\.decode\.resize=dict\(to='teacher'\)"):
        losses(model, data)


@pytest.mark.parametrize('resize, message', [
    (dict(to='both'), r"to='teacher' or 'student'"),
    (dict(to='teacher', scale=2), r"unknown \['scale'\]"),
])
def test_a_bad_resize_is_refused_at_build(resize, message):
    spec = dict(student='decode_head.conv_seg', teacher='decode_head.conv_seg',
                loss=dict(type='mmdist.DISTLoss'), resize=resize)
    with pytest.raises(ValueError, match=message):
        build(dict(type='mmdist.LogitDistiller', logits=dict(decode=spec)))
