"""SegTeacherDistill built from the real Cityscapes configs (random
weights, 64 x 128 inputs)."""
import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope

import mmdist  # noqa: F401
from mmdist.registry import MODELS
from tests.utils import REPO


def build(config):
    cfg = Config.fromfile(config)
    cfg.model.teacher_ckpt = None
    cfg.model.architecture.pretrained = None
    init_default_scope('mmseg')
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.train()
    return model


def batch(labels):
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample
    samples = []
    for label in labels:
        sample = SegDataSample(gt_sem_seg=PixelData(data=label[None]))
        sample.set_metainfo(dict(img_shape=(64, 128), pad_shape=(64, 128),
                                 ori_shape=(64, 128)))
        samples.append(sample)
    return torch.randn(len(labels), 3, 64, 128), samples


@pytest.fixture(scope='module', params=['deeplabv3', 'pspnet'])
def model(request):
    return build(f'configs/dist_{request.param}_r18_cityscapes.py')


def test_teacher_runs_both_heads_without_graph(model):
    calls = []
    model.teacher.decode_head.loss_by_feat = lambda *a, **k: calls.append(1)
    labels = torch.randint(0, 19, (2, 64, 128))
    labels[:, :8] = 255
    losses = model.loss(*batch(labels))
    assert calls == []
    distiller = model.distiller
    for name in ('logits_decode', 'logits_aux'):
        teacher = distiller.get_record(name, False)
        student = distiller.get_record(name, True)
        # The heads' own resolution: output stride 8, 19 classes.
        assert teacher.shape == student.shape == (2, 19, 8, 16)
        assert not teacher.requires_grad and student.requires_grad
    for key in ('distill.loss_decode', 'distill.loss_aux'):
        assert torch.isfinite(losses[key]) and losses[key] > 0
    assert not model.teacher.training


def test_every_pixel_is_distilled_by_default(model):
    # As the authors: pixels labelled 255 count like any other.
    from mmdist.models.losses import dist_loss
    assert 'gt' not in model.distiller.student_recorders.recorders
    for labels in (torch.randint(0, 19, (2, 64, 128)),
                   torch.full((2, 64, 128), 255)):
        labels[0, :, :64] = 255
        losses = model.loss(*batch(labels))
        distiller = model.distiller
        for name, key, weight in (('logits_decode', 'loss_decode', 1.0),
                                  ('logits_aux', 'loss_aux', 0.4)):
            expected = weight * dist_loss(distiller.get_record(name, True),
                                          distiller.get_record(name, False))
            assert expected > 0
            torch.testing.assert_close(losses[f'distill.{key}'], expected)


@pytest.fixture(scope='module')
def skip255():
    return build('configs/dist_deeplabv3_r18_cityscapes_skip255.py')


def test_all_ignored_crop_gives_zero_finite_loss(skip255):
    model = skip255
    losses = model.loss(*batch(torch.full((2, 64, 128), 255)))
    for key in ('distill.loss_decode', 'distill.loss_aux'):
        assert losses[key].item() == 0 and torch.isfinite(losses[key])
    total = sum(v for k, v in losses.items() if 'loss' in k)
    total.backward()
    assert all(torch.isfinite(p.grad).all()
               for p in model.student.parameters() if p.grad is not None)


def test_ignored_pixels_are_left_out_as_an_option(skip255):
    from mmdist.models.losses import dist_loss
    model = skip255
    labels = torch.randint(0, 19, (2, 64, 128))
    labels[0, :, :64] = 255
    losses = model.loss(*batch(labels))
    distiller = model.distiller
    assert torch.equal(distiller.get_record('gt', True)[:, 0], labels)
    student = distiller.get_record('logits_decode', True)
    teacher = distiller.get_record('logits_decode', False)
    # Nearest downsampling by 8 picks every 8th label.
    mask = labels[:, ::8, ::8] != 255
    expected = dist_loss(student, teacher, valid_mask=mask)
    torch.testing.assert_close(losses['distill.loss_decode'], expected)
    assert not torch.allclose(expected, dist_loss(student, teacher))
    # The auxiliary head's DIST weighs 0.4.
    aux = dist_loss(distiller.get_record('logits_aux', True),
                    distiller.get_record('logits_aux', False),
                    valid_mask=mask)
    torch.testing.assert_close(losses['distill.loss_aux'], 0.4 * aux)


def test_kd_configs_follow_the_same_pixels(tmp_path):
    # KD uses every pixel too; the same one line leaves 255 out of it.
    from mmdist.models.losses import kd_loss
    config = tmp_path / 'kd_skip255.py'
    config.write_text(
        "_base_ = ['{}/configs/kd_deeplabv3_r18_cityscapes.py']\n"
        'model = dict(distiller=_base_.seg_leave_out_ignored)\n'.format(
            REPO))
    labels = torch.randint(0, 19, (2, 64, 128))
    labels[0, :, :64] = 255
    mask = labels[:, ::8, ::8] != 255
    for path, valid_mask in (
            ('configs/kd_deeplabv3_r18_cityscapes.py', None),
            (str(config), mask)):
        model = build(path)
        losses = model.loss(*batch(labels))
        student = model.distiller.get_record('logits_decode', True)
        teacher = model.distiller.get_record('logits_decode', False)
        torch.testing.assert_close(
            losses['distill.loss_decode'],
            kd_loss(student, teacher, valid_mask=valid_mask))
