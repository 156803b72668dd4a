"""mmdist.testing: the settings the benchmarks and tests build, here
mmyolo's RTMDet pair, whose batches and mmyolo KD variant differ."""
import pytest
import torch

from mmdist.testing import IMAGENET, RTMDET, build_setting, make_batch


def test_an_rtmdet_batch_is_collated_as_mmyolos_loaders_do():
    batch = make_batch(RTMDET, batch_size=2, image_size=(64, 96))
    assert batch['inputs'].shape == (2, 3, 64, 96)
    assert batch['inputs'].dtype == torch.uint8
    # One row a box: image index, label, x1, y1, x2, y2.
    table = batch['data_samples']['bboxes_labels']
    assert table.shape == (10, 6)
    assert table[:, 0].tolist() == [0] * 5 + [1] * 5
    assert (table[:, 1] >= 0).all() and (table[:, 1] < 80).all()
    assert (table[:, 4] >= table[:, 2]).all()


def test_the_kd_variant_builds_mmyolos_own_distillation():
    model = build_setting(RTMDET, 'kd')
    assert type(model).__name__ == 'FpnTeacherDistill'
    assert set(model.distiller.distill_losses) == {
        'loss_fpn0', 'loss_fpn1', 'loss_fpn2'}
    # The same student as the DIST config's.
    student = build_setting(RTMDET, 'student')
    assert [(k, v.shape) for k, v in model.student.state_dict().items()] \
        == [(k, v.shape) for k, v in student.state_dict().items()]


def test_a_setting_without_a_kd_config_says_so():
    with pytest.raises(ValueError, match='resnet18_in1k setting has no '
                       'kd_config'):
        build_setting(IMAGENET, 'kd')
