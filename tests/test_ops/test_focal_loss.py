"""mmdist.ops.focal_loss through mmcv's sigmoid_focal_loss and
softmax_focal_loss: the sigmoid one against mmdet's py_sigmoid_focal_loss,
the softmax one against its formula written with log_softmax."""

import pytest
import torch
import torch.nn.functional as F

import mmdist  # noqa: F401
from mmdist.ops import focal_loss
from mmdist.ops.ext import OPS


pytestmark = pytest.mark.usefixtures('mmdist_ops_in_mmcv')


def logits_and_targets(n=12, classes=5, seed=0, background=True,
                       dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    logits = (torch.randn(n, classes, generator=g, dtype=torch.float64) *
              3).to(dtype).requires_grad_(True)
    # Background is class ``classes`` for the sigmoid loss.
    target = torch.randint(0, classes + background, (n, ), generator=g)
    weight = torch.rand(classes, generator=g, dtype=torch.float64).to(dtype)
    return logits, target, weight


def grad_of(loss, leaf, seed=1):
    upstream = torch.randn(loss.shape, generator=torch.Generator()
                           .manual_seed(seed), dtype=loss.dtype)
    return torch.autograd.grad(loss, leaf, upstream)[0]


def mmdet_sigmoid(logits, target, weight, gamma, alpha, reduction):
    """mmdet's own loss, given one-hot targets and a per-row weight; mmcv's
    'mean' divides by the rows, mmdet's by the elements."""
    from mmdet.models.losses.focal_loss import py_sigmoid_focal_loss
    classes = logits.size(1)
    onehot = F.one_hot(target, classes + 1)[:, :classes]
    row_weight = None if weight is None else weight[target]
    loss = py_sigmoid_focal_loss(logits, onehot, row_weight, gamma, alpha,
                                 'none' if reduction == 'none' else 'sum')
    return loss / len(logits) if reduction == 'mean' else loss


@pytest.mark.parametrize('reduction', ['none', 'mean', 'sum'])
@pytest.mark.parametrize('with_weight', [False, True])
@pytest.mark.parametrize('gamma,alpha', [(2.0, 0.25), (0.0, 0.5),
                                         (1.5, 0.75)])
def test_sigmoid_equals_mmdet(reduction, with_weight, gamma, alpha):
    from mmcv.ops import sigmoid_focal_loss
    # mmcv reads the weight at the target class: foreground rows only.
    logits, target, weight = logits_and_targets(background=not with_weight)
    weight = weight if with_weight else None
    ours = sigmoid_focal_loss(logits, target, gamma, alpha, weight,
                              reduction)
    theirs = mmdet_sigmoid(logits, target, weight, gamma, alpha, reduction)
    torch.testing.assert_close(ours, theirs)
    torch.testing.assert_close(grad_of(ours, logits), grad_of(theirs, logits))


def softmax_reference(logits, target, weight, gamma, alpha, reduction):
    """-alpha * (1 - p_t) ** gamma * log(p_t) * weight[t] per row, 0 for a
    negative target; mmcv's 'mean' divides by the rows."""
    counted = target >= 0
    label = target.clamp(min=0)
    log_p = torch.log_softmax(logits, 1).gather(1, label[:, None])[:, 0]
    loss = -alpha * (1 - log_p.exp()).pow(gamma) * log_p
    if weight is not None:
        loss = loss * weight[label]
    loss = torch.where(counted, loss, 0)
    if reduction == 'none':
        return loss
    return loss.sum() / (len(loss) if reduction == 'mean' else 1)


@pytest.mark.parametrize('reduction', ['none', 'mean', 'sum'])
@pytest.mark.parametrize('with_weight', [False, True])
@pytest.mark.parametrize('gamma', [0.0, 2.0, 1.5])
def test_softmax_equals_formula(reduction, with_weight, gamma):
    from mmcv.ops import softmax_focal_loss
    logits, target, weight = logits_and_targets(background=False)
    target[3] = -1  # an ignored row: no loss, no gradient
    weight = weight if with_weight else None
    ours = softmax_focal_loss(logits, target, gamma, 0.25, weight, reduction)
    theirs = softmax_reference(logits, target, weight, gamma, 0.25,
                               reduction)
    torch.testing.assert_close(ours, theirs)
    if reduction == 'none':
        # mmcv's backward multiplies the (N, C) gradient by the (N,)
        # incoming one: it cannot run for 'none' (mmcv's wrapper, not ours).
        return
    ours_grad = grad_of(ours, logits)
    torch.testing.assert_close(ours_grad, grad_of(theirs, logits))
    assert torch.equal(ours_grad[3], torch.zeros(5))


def test_softmax_module():
    from mmcv.ops import SoftmaxFocalLoss
    logits, target, weight = logits_and_targets(background=False)
    loss = SoftmaxFocalLoss(2.0, 0.25, weight, 'mean')(logits, target)
    torch.testing.assert_close(
        loss, softmax_reference(logits, target, weight, 2.0, 0.25, 'mean'))


def test_gradcheck_float64():
    from mmcv.ops import sigmoid_focal_loss, softmax_focal_loss
    logits, target, weight = logits_and_targets(n=6, classes=3,
                                                background=False,
                                                dtype=torch.float64)
    # 'sum' for the softmax loss: mmcv's backward cannot take 'none'.
    for loss, reduction in ((softmax_focal_loss, 'sum'),
                            (sigmoid_focal_loss, 'none')):
        for w in (None, weight):
            assert torch.autograd.gradcheck(
                lambda x: loss(x, target, 2.0, 0.25, w, reduction),
                (logits, ))


def test_softmax_buffers_overwritten_with_mmcv_terms():
    # mmcv's kernels assign output, buff and grad_input; buff is the
    # derivative of the loss w.r.t. log p_t.
    logits, target, weight = logits_and_targets(background=False)
    prob = logits.detach().softmax(1)
    output, buff = torch.full((12, ), 5.), torch.full((12, ), 5.)
    grad_input = torch.full_like(prob, 5.)
    focal_loss.softmax_focal_loss_forward(prob, target, weight, output,
                                          gamma=2.0, alpha=0.25)
    focal_loss.softmax_focal_loss_backward(prob, target, weight, buff,
                                           grad_input, gamma=2.0, alpha=0.25)
    log_p_t = prob.gather(1, target[:, None])[:, 0].log().requires_grad_()
    loss = -0.25 * (1 - log_p_t.exp())**2 * log_p_t * weight[target]
    torch.testing.assert_close(output, loss.detach())
    torch.testing.assert_close(
        buff, torch.autograd.grad(loss.sum(), log_p_t)[0])
    torch.testing.assert_close(
        grad_input,
        torch.autograd.grad(
            softmax_reference(logits, target, weight, 2.0, 0.25,
                              'sum'), logits)[0])


def test_softmax_probability_clamped_at_flt_min():
    # p_t == 0: mmcv takes log(FLT_MIN), a finite loss.
    prob = torch.tensor([[0., 1.], [1., 0.]])
    output = torch.zeros(2)
    focal_loss.softmax_focal_loss_forward(prob, torch.tensor([0, 0]),
                                          prob.new_empty(0), output, 0.0, 1.)
    flt_min = torch.finfo(torch.float32).tiny
    assert output.tolist() == [-torch.tensor(flt_min).log().item(), 0.0]


def test_softmax_half_computed_in_float32():
    from mmcv.ops import softmax_focal_loss
    logits, target, _ = logits_and_targets(background=False)
    half = logits.detach().half().requires_grad_(True)
    loss = softmax_focal_loss(half, target, 2.0, 0.25, None, 'none')
    assert loss.dtype == torch.float16
    torch.testing.assert_close(
        loss.float(),
        softmax_reference(half.detach().float(), target, None, 2.0, 0.25,
                          'none'), rtol=2e-3, atol=2e-3)


def test_softmax_background_target_is_refused():
    from mmcv.ops import softmax_focal_loss
    logits, target, _ = logits_and_targets(background=False)
    target[0] = 5
    with pytest.raises(ValueError, match=r'classes 0\.\.4'):
        softmax_focal_loss(logits, target, 2.0, 0.25, None, 'mean')


def test_sigmoid_class_weight_needs_foreground_and_shapes_are_checked():
    from mmcv.ops import sigmoid_focal_loss
    g = torch.Generator().manual_seed(0)
    pred = torch.randn(64, 5, generator=g)
    target = torch.randint(0, 5, (64, ), generator=g)
    weight = torch.linspace(0.5, 2.0, 5)
    plain = sigmoid_focal_loss(pred, target, 2.0, 0.25, None, 'none')
    weighted = sigmoid_focal_loss(pred, target, 2.0, 0.25, weight, 'none')
    torch.testing.assert_close(weighted, plain * weight[target][:, None])
    # mmcv's kernel reads past the weight for a background row.
    with pytest.raises(ValueError, match='foreground target'):
        sigmoid_focal_loss(pred, torch.full_like(target, 5), 2.0, 0.25,
                           weight, 'none')
    with pytest.raises(ValueError, match=r'expects input \(N, C\)'):
        OPS['sigmoid_focal_loss_forward'](pred, target[:10],
                                          pred.new_empty(0),
                                          torch.empty_like(pred), 2.0, 0.25)
