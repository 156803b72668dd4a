import numpy as np
import pytest
import torch
from scipy.special import expit, rel_entr, softmax

from mmdist.models.losses import KDLoss, kd_loss


def randn(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed),
                       dtype=torch.float64)


def reference(s, t, tau, activation):
    s, t = s.numpy() / tau, t.numpy() / tau
    if activation == 'softmax':
        per_row = rel_entr(softmax(t, 1), softmax(s, 1)).sum(1)
    else:
        p_t, p_s = expit(t), expit(s)
        per_row = (rel_entr(p_t, p_s) + rel_entr(1 - p_t, 1 - p_s)).sum(1)
    return tau**2 * per_row.mean()


@pytest.mark.parametrize('activation', ['softmax', 'sigmoid'])
@pytest.mark.parametrize('tau', [1.0, 3.0])
def test_matches_scipy(activation, tau):
    s, t = randn(50, 7, seed=1), randn(50, 7, seed=2)
    assert kd_loss(s, t, tau, activation).item() == pytest.approx(
        reference(s, t, tau, activation), rel=1e-9)


def test_dense_mask_and_module():
    s, t = randn(2, 8, 3, 3, seed=3), randn(2, 8, 3, 3, seed=4)
    mask = torch.rand(2, 3, 3, generator=torch.Generator().manual_seed(1)) > .4
    rows_s = s.permute(0, 2, 3, 1)[mask].reshape(-1, 4)
    rows_t = t.permute(0, 2, 3, 1)[mask].reshape(-1, 4)
    expected = reference(rows_s, rows_t, 2.0, 'sigmoid')
    module = KDLoss(tau=2.0, activation='sigmoid', num_classes=4,
                    loss_weight=0.5)
    assert module(s, t, mask).item() == pytest.approx(0.5 * expected,
                                                      rel=1e-9)


def test_gradcheck_and_no_rows():
    s = randn(6, 5, seed=5).requires_grad_()
    t = randn(6, 5, seed=6)
    assert torch.autograd.gradcheck(lambda x: kd_loss(x, t, 2.0), (s, ))
    empty = torch.zeros(0, 5, requires_grad=True)
    loss = kd_loss(empty, torch.zeros(0, 5))
    loss.backward()
    assert loss.item() == 0 and empty.grad.shape == (0, 5)


def test_identical_inputs_give_zero():
    s = randn(10, 4, seed=7)
    for activation in ('softmax', 'sigmoid'):
        assert abs(kd_loss(s, s.clone(), activation=activation).item()) < 1e-9
        assert np.isfinite(kd_loss(s, -s, activation=activation).item())
