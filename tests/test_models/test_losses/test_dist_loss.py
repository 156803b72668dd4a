import numpy as np
import pytest
import torch
from scipy.special import expit, softmax
from scipy.stats import pearsonr

from mmdist.models.losses import DISTLoss, dist_loss, dist_loss_terms


def reference_terms(s, t, tau=1.0, activation='softmax'):
    """The paper's formula, row by row and column by column, with scipy."""
    s = np.asarray(s, dtype=np.float64) / tau
    t = np.asarray(t, dtype=np.float64) / tau
    if activation == 'softmax':
        y_s, y_t = softmax(s, axis=1), softmax(t, axis=1)
    else:
        y_s, y_t = expit(s), expit(t)
    inter = 1 - np.mean([pearsonr(a, b)[0] for a, b in zip(y_s, y_t)])
    intra = 1 - np.mean([pearsonr(a, b)[0] for a, b in zip(y_s.T, y_t.T)])
    return inter, intra


def randn(*shape, seed=0, dtype=torch.float64):
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=gen, dtype=dtype)


@pytest.mark.parametrize('activation', ['softmax', 'sigmoid'])
@pytest.mark.parametrize('tau', [1.0, 4.0])
def test_matches_scipy_reference(activation, tau):
    s, t = randn(64, 10, seed=1), randn(64, 10, seed=2)
    inter, intra = dist_loss_terms(s, t, tau=tau, activation=activation)
    ref_inter, ref_intra = reference_terms(s, t, tau, activation)
    assert inter.item() == pytest.approx(ref_inter, abs=1e-7)
    assert intra.item() == pytest.approx(ref_intra, abs=1e-7)
    loss = dist_loss(s, t, beta=0.5, gamma=2.0, tau=tau, activation=activation)
    expected = tau**2 * (0.5 * ref_inter + 2.0 * ref_intra)
    assert loss.item() == pytest.approx(expected, rel=1e-6)


def test_float32_matches_reference():
    s, t = randn(300, 81, seed=3), randn(300, 81, seed=4)
    loss = dist_loss(s.float(), t.float())
    assert loss.dtype == torch.float32
    assert loss.item() == pytest.approx(sum(reference_terms(s, t)), abs=1e-5)


def test_matches_mmrazor_on_2d():
    from mmdist import compat  # noqa: F401  makes mmrazor importable
    from mmrazor.models.losses import DISTLoss as RazorDISTLoss
    s, t = randn(32, 100, seed=5), randn(32, 100, seed=6)
    razor = RazorDISTLoss(
        inter_loss_weight=0.7, intra_loss_weight=1.3, tau=2.0, loss_weight=3)
    ours = DISTLoss(beta=0.7, gamma=1.3, tau=2.0, loss_weight=3)
    s1, s2 = s.clone().requires_grad_(), s.clone().requires_grad_()
    expected, got = razor(s1, t), ours(s2, t)
    torch.testing.assert_close(got, expected)
    expected.backward()
    got.backward()
    torch.testing.assert_close(s2.grad, s1.grad)


@pytest.mark.parametrize('activation', ['softmax', 'sigmoid'])
def test_gradcheck_2d(activation):
    s = randn(12, 6, seed=7).requires_grad_()
    t = randn(12, 6, seed=8)
    assert torch.autograd.gradcheck(
        lambda x: dist_loss_terms(x, t, tau=1.5, activation=activation),
        (s, ))


def test_gradcheck_dense_masked_anchor_rows():
    s = randn(2, 6, 3, 4, seed=9).requires_grad_()
    t = randn(2, 6, 3, 4, seed=10)
    mask = torch.rand(2, 3, 4, generator=torch.Generator().manual_seed(0)) > .3
    assert torch.autograd.gradcheck(
        lambda x: dist_loss_terms(
            x, t, activation='sigmoid', num_classes=3, valid_mask=mask),
        (s, ))


def test_dense_rows_are_positions_over_the_whole_batch():
    s, t = randn(2, 5, 4, 3, seed=11), randn(2, 5, 4, 3, seed=12)
    rows_s = s.permute(0, 2, 3, 1).reshape(-1, 5)
    rows_t = t.permute(0, 2, 3, 1).reshape(-1, 5)
    inter, intra = dist_loss_terms(s, t)
    ref_inter, ref_intra = reference_terms(rows_s, rows_t)
    assert inter.item() == pytest.approx(ref_inter, abs=1e-7)
    # The intra term correlates each class over all 24 positions, not only
    # over the 2 images (MMRazor 1.0's behaviour).
    assert intra.item() == pytest.approx(ref_intra, abs=1e-7)


def test_num_classes_makes_one_row_per_anchor():
    # 3 anchors x 4 classes per position; mmdet lays channels out anchor-major.
    s, t = randn(2, 12, 2, 2, seed=13), randn(2, 12, 2, 2, seed=14)
    rows_s = s.permute(0, 2, 3, 1).reshape(-1, 4)
    rows_t = t.permute(0, 2, 3, 1).reshape(-1, 4)
    got = dist_loss_terms(s, t, activation='sigmoid', num_classes=4)
    ref = reference_terms(rows_s, rows_t, activation='sigmoid')
    assert [g.item() for g in got] == pytest.approx(ref, abs=1e-7)


def test_mask_leaves_rows_out_of_both_terms():
    s, t = randn(2, 19, 4, 4, seed=15), randn(2, 19, 4, 4, seed=16)
    mask = torch.zeros(2, 4, 4, dtype=torch.bool)
    mask[0, :2] = True
    mask[1, 3, 1:] = True
    rows_s = s.permute(0, 2, 3, 1)[mask]
    rows_t = t.permute(0, 2, 3, 1)[mask]
    got = dist_loss_terms(s, t, valid_mask=mask)
    assert [g.item() for g in got] == pytest.approx(
        reference_terms(rows_s, rows_t), abs=1e-7)


def test_identical_inputs_give_zero():
    s = randn(40, 9, seed=17)
    for activation in ('softmax', 'sigmoid'):
        # Not exactly 0: eps = 1e-8 sits in each correlation's denominator.
        assert dist_loss(s, s.clone(), activation=activation).item() == \
            pytest.approx(0, abs=1e-6)


def test_function_and_module_agree():
    s, t = randn(2, 8, 3, 3, seed=18), randn(2, 8, 3, 3, seed=19)
    mask = torch.ones(2, 3, 3, dtype=torch.bool)
    mask[1, 0, 0] = False
    module = DISTLoss(beta=2, gamma=0.5, tau=3, activation='sigmoid',
                      loss_weight=0.25)
    expected = 0.25 * dist_loss(s, t, beta=2, gamma=0.5, tau=3,
                                activation='sigmoid', valid_mask=mask)
    torch.testing.assert_close(module(s, t, mask), expected)


def test_log_terms_split_the_loss():
    s, t = randn(30, 7, seed=20), randn(30, 7, seed=21)
    out = DISTLoss(beta=2, gamma=3, tau=2, loss_weight=0.5, log_terms=True)(
        s.requires_grad_(), t)
    inter, intra = dist_loss_terms(s, t, tau=2)
    torch.testing.assert_close(out['inter'], 0.5 * 4 * 2 * inter)
    torch.testing.assert_close(out['intra'], 0.5 * 4 * 3 * intra)
    torch.testing.assert_close(out['loss'], out['inter'] + out['intra'])
    assert out['loss'].requires_grad and not out['inter'].requires_grad


def test_teacher_is_detached():
    s = randn(10, 5, seed=22).requires_grad_()
    t = randn(10, 5, seed=23).requires_grad_()
    dist_loss(s, t).backward()
    assert s.grad is not None and t.grad is None


def test_autocast_runs_in_float32():
    s = randn(64, 20, seed=24, dtype=torch.float32).bfloat16()
    t = randn(64, 20, seed=25, dtype=torch.float32).bfloat16()
    with torch.autocast('cpu', dtype=torch.bfloat16):
        loss = dist_loss(s, t)
    assert loss.dtype == torch.float32
    expected = sum(reference_terms(s.float(), t.float()))
    assert loss.item() == pytest.approx(expected, abs=1e-5)


def test_shape_mismatch_names_both_shapes():
    with pytest.raises(ValueError, match=r'\(4, 10\).*\(4, 11\)'):
        dist_loss(torch.randn(4, 10), torch.randn(4, 11))


@pytest.mark.parametrize('kwargs, match', [
    (dict(activation='relu'), 'activation'),
    (dict(num_classes=7), 'num_classes=7'),
    (dict(valid_mask=torch.ones(3, dtype=torch.bool)), r'\(4,\)'),
])
def test_bad_arguments_are_explained(kwargs, match):
    with pytest.raises(ValueError, match=match):
        dist_loss(torch.randn(4, 10), torch.randn(4, 10), **kwargs)


def test_module_rejects_bad_settings():
    with pytest.raises(ValueError, match='tau'):
        DISTLoss(tau=0)
    with pytest.raises(ValueError, match='activation'):
        DISTLoss(activation='tanh')


def _value_and_grad(s, t, **kwargs):
    s = s.clone().requires_grad_()
    inter, intra = dist_loss_terms(s, t, **kwargs)
    (inter + intra).backward()
    return inter, intra, s.grad


def test_single_row_has_no_intra_term():
    s, t = randn(1, 6, seed=26), randn(1, 6, seed=27)
    inter, intra, grad = _value_and_grad(s, t)
    assert intra.item() == 0
    assert inter.item() == pytest.approx(
        1 - pearsonr(softmax(s[0].numpy()), softmax(t[0].numpy()))[0])
    assert torch.isfinite(grad).all()


def test_single_class_has_no_inter_term():
    s, t = randn(20, 1, seed=28), randn(20, 1, seed=29)
    inter, intra, grad = _value_and_grad(s, t, activation='sigmoid')
    assert inter.item() == 0
    assert intra.item() == pytest.approx(
        1 - pearsonr(expit(s[:, 0]), expit(t[:, 0]))[0])
    assert torch.isfinite(grad).all()


def test_constant_rows_have_zero_correlation():
    s = torch.zeros(5, 4, dtype=torch.float64)
    t = randn(5, 4, seed=30)
    inter, intra, grad = _value_and_grad(s, t)
    # Every student row and column is constant: the formula gives rho = 0.
    assert inter.item() == pytest.approx(1.0)
    assert intra.item() == pytest.approx(1.0)
    assert torch.isfinite(grad).all()


@pytest.mark.parametrize('case', ['all_masked', 'no_rows'])
def test_no_rows_give_zero_loss_and_gradient(case):
    if case == 'no_rows':
        s, t, mask = torch.zeros(0, 81), torch.zeros(0, 81), None
    else:
        s, t = torch.randn(2, 19, 3, 3), torch.randn(2, 19, 3, 3)
        mask = torch.zeros(2, 3, 3, dtype=torch.bool)
    inter, intra, grad = _value_and_grad(s, t, valid_mask=mask)
    assert inter.item() == 0 and intra.item() == 0
    assert grad.shape == s.shape and not grad.any()


def test_repeated_backward_gives_independent_gradients():
    s = randn(20, 5, seed=31).requires_grad_()
    t = randn(20, 5, seed=32)
    loss = dist_loss(s, t)
    first, = torch.autograd.grad(loss, s, retain_graph=True)
    kept = first.clone()
    second, = torch.autograd.grad(loss, s)
    torch.testing.assert_close(first, kept)  # not overwritten
    torch.testing.assert_close(second, first)


def test_gt_labels_leave_ignored_pixels_out():
    s, t = randn(2, 19, 4, 6, seed=33), randn(2, 19, 4, 6, seed=34)
    # Labels at twice the logits' resolution; nearest picks every 2nd pixel.
    labels = torch.randint(0, 19, (2, 1, 8, 12),
                           generator=torch.Generator().manual_seed(2))
    labels[0, 0, :4] = 255
    labels[1, 0, :, 6:] = 255
    mask = labels[:, 0, ::2, ::2] != 255
    module = DISTLoss(ignore_index=255)
    expected = dist_loss(s, t, valid_mask=mask)
    torch.testing.assert_close(module(s, t, gt_labels=labels), expected)
    rows_s = s.permute(0, 2, 3, 1)[mask]
    rows_t = t.permute(0, 2, 3, 1)[mask]
    assert expected.item() == pytest.approx(
        sum(reference_terms(rows_s, rows_t)), rel=1e-6)


def test_all_ignored_crop_gives_zero_finite_loss():
    s = randn(1, 19, 4, 4, seed=35).requires_grad_()
    t = randn(1, 19, 4, 4, seed=36)
    labels = torch.full((1, 1, 32, 32), 255)
    loss = DISTLoss(ignore_index=255)(s, t, gt_labels=labels)
    loss.backward()
    assert loss.item() == 0 and torch.isfinite(s.grad).all()
    assert not s.grad.any()


def test_gt_labels_need_ignore_index_and_matching_batch():
    s, t = randn(2, 3, 2, 2), randn(2, 3, 2, 2)
    with pytest.raises(ValueError, match='ignore_index'):
        DISTLoss()(s, t, gt_labels=torch.zeros(2, 1, 2, 2))
    with pytest.raises(ValueError, match=r'N = 2.*\(3, 1, 2, 2\)'):
        DISTLoss(ignore_index=255)(s, t, gt_labels=torch.zeros(3, 1, 2, 2))


def authors_classification_dist(z_s, z_t, beta=1.0, gamma=1.0, tau=1.0,
                                eps=1e-8):
    """DIST as hunto/image_classification_sota computes it for a batch of
    classification logits (lib/models/losses/dist_kd.py), written out: the
    softmax of logits / tau, the correlation of centred vectors with eps on
    the product of norms, inter over each sample's classes, intra over each
    class's samples of the batch the loss is given (one GPU's batch; the
    authors gather nothing), both scaled by tau^2."""
    def relation(a, b):  # 1 - mean over rows of the centred cosine
        a = a - a.mean(1, keepdim=True)
        b = b - b.mean(1, keepdim=True)
        cos = (a * b).sum(1) / (a.norm(dim=1) * b.norm(dim=1) + eps)
        return 1 - cos.mean()
    y_s, y_t = (z_s / tau).softmax(1), (z_t / tau).softmax(1)
    inter = tau**2 * relation(y_s, y_t)
    intra = tau**2 * relation(y_s.t(), y_t.t())
    return beta * inter + gamma * intra


@pytest.mark.parametrize('tau, beta, gamma',
                         [(1.0, 1.0, 1.0), (4.0, 2.0, 0.5)])
@pytest.mark.parametrize('batch', [32, 2])  # the authors' 32 a GPU; tiny
def test_classification_dist_equals_the_authors(tau, beta, gamma, batch):
    s = randn(batch, 1000, seed=5) * 3
    t = randn(batch, 1000, seed=6) * 3
    ours = DISTLoss(beta=beta, gamma=gamma, tau=tau, loss_weight=2.0)(s, t)
    expected = 2.0 * authors_classification_dist(s, t, beta, gamma, tau)
    assert ours.dtype == torch.float64
    assert abs(ours.item() - expected.item()) < 1e-6 * max(1, expected.item())


def test_intra_class_relation_is_over_the_batch_it_is_given():
    # With 8 GPUs each computes the intra-class term over its own batch:
    # the mean of the per-GPU losses is not the loss of the whole batch.
    s, t = randn(64, 100, seed=7) * 3, randn(64, 100, seed=8) * 3
    per_gpu = torch.stack([dist_loss(a, b) for a, b in
                           zip(s.chunk(8), t.chunk(8))]).mean()
    whole = dist_loss(s, t)
    authors = [authors_classification_dist(a, b) for a, b in
               zip(s.chunk(8), t.chunk(8))]
    assert per_gpu.item() == pytest.approx(
        torch.stack(authors).mean().item(), abs=1e-9)
    assert abs(per_gpu.item() - whole.item()) > 1e-3
