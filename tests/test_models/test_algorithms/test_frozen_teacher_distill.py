"""FrozenTeacherDistill on real mmdet RetinaNets (R18 student and teacher,
to keep it quick on CPU)."""
import copy

import pytest
import torch
from mmengine.config import Config

import mmdist  # noqa: F401
from mmdist.models import FrozenTeacherDistill, split_loss_terms
from mmdist.registry import MODELS

RETINANET = 'mmdet::retinanet/retinanet_r18_fpn_1x_coco.py'


def algorithm_cfg(**overrides):
    from mmengine.hub import get_config
    detector = get_config(RETINANET).model
    detector.backbone.init_cfg = None
    detector._scope_ = 'mmdet'
    cfg = dict(
        type='mmdist.FrozenTeacherDistill',
        architecture=copy.deepcopy(detector),
        teacher=copy.deepcopy(detector),
        distiller=dict(
            type='ConfigurableDistiller',
            student_recorders=dict(
                cls=dict(type='ModuleOutputs', source='bbox_head.retina_cls')),
            teacher_recorders=dict(
                cls=dict(type='ModuleOutputs', source='bbox_head.retina_cls')),
            distill_losses=dict(
                loss_p3=dict(type='mmdist.DISTLoss', activation='sigmoid',
                             log_terms=True)),
            loss_forward_mappings=dict(
                loss_p3=dict(
                    preds_S=dict(from_student=True, recorder='cls'),
                    preds_T=dict(from_student=False, recorder='cls')))))
    cfg.update(overrides)
    return Config(cfg)


def build(**overrides):
    from mmengine.registry import init_default_scope
    init_default_scope('mmrazor')
    return MODELS.build(algorithm_cfg(**overrides))


def batch(model):
    from mmdet.testing import demo_mm_inputs
    data = demo_mm_inputs(batch_size=2, image_shapes=(3, 96, 96),
                          num_items=[3, 2], num_classes=80)
    data = model.data_preprocessor(data, training=True)
    return data['inputs'], data['data_samples']


def test_teacher_runs_forward_only_without_graph():
    model = build()
    model.train()
    calls = []
    teacher_head = model.teacher.bbox_head
    original = teacher_head.loss_by_feat
    teacher_head.loss_by_feat = lambda *a, **k: calls.append(1) or original(
        *a, **k)
    inputs, samples = batch(model)
    losses = model.loss(inputs, samples)
    assert calls == []  # no teacher loss, hence no target assignment
    teacher_logits = model.distiller.teacher_recorders.get_recorder(
        'cls').data_buffer
    assert len(teacher_logits) == 5
    assert not any(t.requires_grad for t in teacher_logits)
    assert losses['distill.loss_p3'].requires_grad
    assert set(losses) >= {
        'student.loss_cls', 'student.loss_bbox', 'distill.loss_p3',
        'distill.p3_inter', 'distill.p3_intra'
    }


def test_teacher_is_frozen_and_stays_in_eval():
    model = build()
    model.train()
    assert model.student.training and not model.teacher.training
    assert not any(p.requires_grad for p in model.teacher.parameters())
    bn = next(m for m in model.teacher.modules()
              if isinstance(m, torch.nn.BatchNorm2d))
    before = bn.running_mean.clone()
    inputs, samples = batch(model)
    model.loss(inputs, samples)
    assert torch.equal(bn.running_mean, before)


def test_checkpoints_leave_out_a_teacher_from_teacher_ckpt(tmp_path):
    """A teacher loaded from teacher_ckpt is not saved (building loads it);
    a state dict without it loads strictly and keeps the loaded teacher; one
    with it (older mmdist, MMRazor) loads it; a teacher without
    teacher_ckpt is saved."""
    from mmengine.model import ExponentialMovingAverage
    torch.manual_seed(0)
    random_teacher = build()
    assert random_teacher.teacher_ckpt is None
    saved = random_teacher.state_dict()
    teacher_keys = {k for k in saved if k.startswith('teacher.')}
    assert teacher_keys
    ckpt = str(tmp_path / 'teacher.pth')
    torch.save(dict(state_dict=random_teacher.teacher.state_dict()), ckpt)

    # Unfolded, so that the teacher's keys are the saved ones (loading an
    # unfolded checkpoint into a folded teacher: tests/.../test_fold_bn.py).
    model = build(teacher_ckpt=ckpt, teacher_fold_bn=False)
    state = model.state_dict()
    assert set(state) == set(saved) - teacher_keys
    assert any(k.startswith('architecture.') for k in state)
    # The EMA copy (mmdet's and mmpretrain's EMAHook) leaves it out too.
    ema = ExponentialMovingAverage(model)
    assert not any(k.startswith('module.teacher.') for k in ema.state_dict())
    ExponentialMovingAverage(build(teacher_ckpt=ckpt)).load_state_dict(
        ema.state_dict(), strict=True)

    other = build(teacher_ckpt=ckpt, teacher_fold_bn=False)
    with torch.no_grad():
        for p in other.student.parameters():
            p.add_(1)
    model.load_state_dict(other.state_dict(), strict=True)
    for name, value in model.state_dict().items():
        if torch.is_tensor(value):  # not the teachers' file hashes
            torch.testing.assert_close(value, other.state_dict()[name])
    for name, value in model.teacher.state_dict().items():
        torch.testing.assert_close(value, saved['teacher.' + name])
    # Teacher weights in the checkpoint are loaded.
    changed = {k: v + 1 if torch.is_tensor(v) and v.is_floating_point()
               else v for k, v in saved.items()}
    model.load_state_dict(changed, strict=True)
    for name, value in model.teacher.state_dict().items():
        torch.testing.assert_close(value, changed['teacher.' + name])


def test_gradients_reach_the_student_only():
    model = build()
    model.train()
    inputs, samples = batch(model)
    losses = model.loss(inputs, samples)
    losses['distill.loss_p3'].backward()
    assert model.student.bbox_head.retina_cls.weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in model.teacher.parameters())


def test_trainable_teacher_options_are_refused():
    with pytest.raises(ValueError, match='teacher_trainable'):
        build(teacher_trainable=True)


def test_class_mismatch_is_refused_at_build():
    cfg = algorithm_cfg()
    cfg.teacher.bbox_head.num_classes = 20
    from mmengine.registry import init_default_scope
    init_default_scope('mmrazor')
    with pytest.raises(ValueError, match=r'num_classes=80.*num_classes=20'):
        MODELS.build(cfg)


def test_split_loss_terms_names():
    terms = split_loss_terms(dict(
        loss_p3=dict(loss=torch.tensor(3.), inter=torch.tensor(1.),
                     intra=torch.tensor(2.)),
        loss_kd=torch.tensor(4.)))
    assert set(terms) == {'loss_p3', 'p3_inter', 'p3_intra', 'loss_kd'}
    assert isinstance(build(), FrozenTeacherDistill)


def test_teacher_method_recorders_see_the_teacher_only():
    cfg = algorithm_cfg()
    cfg.distiller.teacher_recorders.head = dict(
        type='MethodOutputs',
        source='mmdet.models.dense_heads.RetinaHead.forward_single')
    from mmengine.registry import init_default_scope
    init_default_scope('mmrazor')
    model = MODELS.build(cfg)
    model.train()
    model.loss(*batch(model))
    recorder = model.distiller.teacher_recorders.get_recorder('head')
    # One call per FPN level of the teacher; the student's five calls (its
    # forward runs after the teacher's) are not recorded.
    assert len(recorder.data_buffer) == 5
    assert not any(t.requires_grad for out in recorder.data_buffer
                   for t in out)


def test_teacher_precision_is_checked_before_building():
    with pytest.raises(ValueError, match=r"teacher_precision='fp8'.*"
                       r"'bfloat16', 'float16'"):
        build(teacher_precision='fp8')


def test_teacher_in_bfloat16_student_in_float32():
    model = build()
    model.train()
    inputs, samples = batch(model)
    torch.manual_seed(0)
    full = model.loss(inputs, samples)
    full_teacher = model.distiller.get_record('cls', False)
    model.teacher_dtype = torch.bfloat16  # what teacher_precision sets
    reduced = model.loss(inputs, samples)
    teacher = model.distiller.get_record('cls', False)
    student = model.distiller.get_record('cls', True)
    assert teacher.dtype == torch.bfloat16 and student.dtype == torch.float32
    assert (teacher.float() - full_teacher).abs().max() < 0.05
    loss = reduced['distill.loss_p3']
    assert loss.dtype == torch.float32 and torch.isfinite(loss)
    assert abs(float(loss) - float(full['distill.loss_p3'])) < 1e-2
    loss.backward()
    assert all(p.grad is None for p in model.teacher.parameters())
    head = model.student.bbox_head.retina_cls
    assert head.weight.grad is not None and head.weight.grad.dtype == \
        torch.float32


def test_teacher_follows_the_students_autocast():
    # tools/train.py --amp runs the whole loss under autocast: the teacher
    # too, unless teacher_precision says otherwise.
    model = build(teacher_precision='float16')
    model.train()
    inputs, samples = batch(model)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        losses = model.loss(inputs, samples)
    assert model.distiller.get_record('cls', False).dtype == torch.float16
    assert model.distiller.get_record('cls', True).dtype == torch.bfloat16
    assert losses['distill.loss_p3'].dtype == torch.float32
    model.teacher_dtype = None
    with torch.autocast('cpu', dtype=torch.bfloat16):
        model.loss(inputs, samples)
    assert model.distiller.get_record('cls', False).dtype == torch.bfloat16


@pytest.mark.parametrize('bad', [float('nan'), float('inf')])
@pytest.mark.parametrize('side', ['teacher', 'student'])
def test_non_finite_logits_stop_naming_loss_side_and_iteration(side, bad):
    # Inf logits saturate the sigmoid into a finite loss: the logits
    # themselves are checked.
    from mmengine.logging import MessageHub
    model = build()
    model.train()
    with torch.no_grad():
        getattr(model, side).bbox_head.retina_cls.bias[0] = bad
    MessageHub.get_current_instance().update_info('iter', 6)
    arg = 'preds_T' if side == 'teacher' else 'preds_S'
    with pytest.raises(FloatingPointError,
                       match=rf"distillation loss loss_p3 reads NaN or Inf "
                       rf"from the {side}'s 'cls' record \({arg}\) at "
                       r'training iteration 7'):
        model.loss(*batch(model))
    with torch.no_grad():
        getattr(model, side).bbox_head.retina_cls.bias[0] = 0.0
    assert torch.isfinite(model.loss(*batch(model))['distill.loss_p3'])


def test_record_idx_past_the_recorded_calls_names_the_mapping():
    # retina_cls runs once per FPN level: 5 calls, record_idx 0 to 4.
    cfg = algorithm_cfg()
    cfg.distiller.loss_forward_mappings.loss_p3.preds_T.record_idx = 5
    model = build(distiller=cfg.distiller)
    model.train()
    with pytest.raises(IndexError,
                       match=r"loss_forward_mappings.loss_p3.preds_T reads "
                       r"record_idx=5 of the teacher recorder 'cls' "
                       r"\(ModuleOutputsRecorder on 'bbox_head.retina_cls'\), "
                       r'which recorded 5 call\(s\) in this iteration: use a '
                       r'record_idx from 0 to 4'):
        model.loss(*batch(model))
