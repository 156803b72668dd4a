import copy
import io

import numpy as np
import pytest
import torch

import mmdist  # noqa: F401  registers the optimizer
from mmdist.engine.optimizers import RMSpropTF

SHAPES = [(3, 4), (5,)]
STEPS = 5


def as_np(x):
    """A float64 numpy copy of a tensor or array."""
    if torch.is_tensor(x):
        x = x.detach().cpu().numpy()
    return np.array(x, dtype=np.float64)


def reference(params, grads, lrs, alpha=0.9, eps=1e-10, weight_decay=0.0,
              momentum=0.0, centered=False, decoupled_decay=False,
              lr_in_momentum=True):
    """The TensorFlow-style RMSprop update, one plain numpy float64 line per
    formula. ``grads[t][i]`` is parameter i's gradient at step t and
    ``lrs[t]`` the learning rate then."""
    params = [as_np(p) for p in params]
    v = [np.ones_like(p) for p in params]
    m = [np.zeros_like(p) for p in params]
    b = [np.zeros_like(p) for p in params]
    for step_grads, lr in zip(grads, lrs):
        for i, g in enumerate(step_grads):
            g = as_np(g)
            p = params[i]
            if decoupled_decay:
                p = p - lr * weight_decay * p
            else:
                g = g + weight_decay * p
            v[i] = alpha * v[i] + (1 - alpha) * g**2
            if centered:
                m[i] = alpha * m[i] + (1 - alpha) * g
                d = np.sqrt(v[i] - m[i]**2 + eps)
            else:
                d = np.sqrt(v[i] + eps)
            if momentum > 0 and lr_in_momentum:
                b[i] = momentum * b[i] + lr * g / d
                p = p - b[i]
            elif momentum > 0:
                b[i] = momentum * b[i] + g / d
                p = p - lr * b[i]
            else:
                p = p - lr * g / d
            params[i] = p
    return params


def make_data(seed=0, steps=STEPS, scale=0.3):
    gen = torch.Generator().manual_seed(seed)
    params = [torch.randn(*s, generator=gen, dtype=torch.float64)
              for s in SHAPES]
    # Gradients of the order of sqrt(eps) for eps=1e-3, so that where eps
    # sits and where square_avg starts both change the result.
    grads = [[scale * torch.randn(*s, generator=gen, dtype=torch.float64)
              for s in SHAPES] for _ in range(steps)]
    return params, grads


def run(optimizer_cls, params, grads, lrs=None, param_groups=None,
        **kwargs):
    """Apply ``grads`` step by step; ``lrs[t]`` overrides every group's lr
    before step t. Returns the final parameters as numpy arrays."""
    params = [p.clone().requires_grad_() for p in params]
    groups = params if param_groups is None else [
        dict(params=[params[i] for i in idx], **opts)
        for idx, opts in param_groups]
    opt = optimizer_cls(groups, **kwargs)
    for t, step_grads in enumerate(grads):
        if lrs is not None:
            for group in opt.param_groups:
                group['lr'] = lrs[t]
        for p, g in zip(params, step_grads):
            p.grad = g.clone()
        opt.step()
    return [p.detach().numpy() for p in params]


OPTIONS = {
    'plain': dict(),
    'recipe': dict(alpha=0.9, eps=1e-3, momentum=0.9, weight_decay=1e-2),
    'momentum': dict(eps=1e-3, momentum=0.9),
    'momentum_lr_outside': dict(eps=1e-3, momentum=0.9,
                                lr_in_momentum=False),
    'centered': dict(eps=1e-3, centered=True),
    'centered_momentum': dict(alpha=0.8, eps=1e-3, centered=True,
                              momentum=0.5),
    'coupled_decay': dict(eps=1e-3, weight_decay=0.1),
    'decoupled_decay': dict(eps=1e-3, weight_decay=0.1,
                            decoupled_decay=True),
    'everything': dict(alpha=0.7, eps=1e-2, weight_decay=0.05,
                       momentum=0.8, centered=True, decoupled_decay=True,
                       lr_in_momentum=False),
}


@pytest.mark.parametrize('name', list(OPTIONS))
def test_matches_numpy_reference(name):
    kwargs = OPTIONS[name]
    params, grads = make_data(seed=1)
    lr = 0.05
    got = run(RMSpropTF, params, grads, lr=lr, **kwargs)
    expected = reference(params, grads, [lr] * STEPS, **kwargs)
    for g, e, p in zip(got, expected, params):
        np.testing.assert_allclose(g, e, rtol=1e-12, atol=1e-14)
        assert not np.allclose(g, p.numpy())  # the parameters did move


def test_option_defaults():
    opt = RMSpropTF([torch.zeros(1, requires_grad=True)])
    assert opt.defaults == dict(
        lr=0.01, alpha=0.9, eps=1e-10, weight_decay=0.0, momentum=0.0,
        centered=False, decoupled_decay=False, lr_in_momentum=True)


@pytest.mark.parametrize('lr_in_momentum', [True, False])
def test_lr_change_with_momentum(lr_in_momentum):
    """With lr in the buffer, a new lr scales new steps only; outside it,
    it scales the whole buffer. The two must differ."""
    params, grads = make_data(seed=2)
    lrs = [0.1, 0.1, 0.02, 0.02, 0.005]
    kwargs = dict(eps=1e-3, momentum=0.9, lr_in_momentum=lr_in_momentum)
    got = run(RMSpropTF, params, grads, lrs=lrs, **kwargs)
    expected = reference(params, grads, lrs, **kwargs)
    other = reference(params, grads, lrs,
                      **dict(kwargs, lr_in_momentum=not lr_in_momentum))
    for g, e, o in zip(got, expected, other):
        np.testing.assert_allclose(g, e, rtol=1e-12, atol=1e-14)
        assert np.abs(g - o).max() > 1e-4


def test_param_groups_with_different_lr_and_a_param_without_grad():
    params, grads = make_data(seed=3)
    frozen = torch.randn(2, 2, dtype=torch.float64, requires_grad=True)
    kwargs = dict(eps=1e-3, momentum=0.9, weight_decay=0.01)
    p0, p1 = (p.clone().requires_grad_() for p in params)
    opt = RMSpropTF([dict(params=[p0], lr=0.1),
                     dict(params=[p1, frozen], lr=0.01, centered=True)],
                    **kwargs)
    frozen_before = frozen.detach().clone()
    for step_grads in grads:
        p0.grad, p1.grad = (g.clone() for g in step_grads)
        opt.step()
    exp0 = reference([params[0]], [[g[0]] for g in grads], [0.1] * STEPS,
                     **kwargs)[0]
    exp1 = reference([params[1]], [[g[1]] for g in grads], [0.01] * STEPS,
                     centered=True, **kwargs)[0]
    np.testing.assert_allclose(p0.detach().numpy(), exp0, rtol=1e-12)
    np.testing.assert_allclose(p1.detach().numpy(), exp1, rtol=1e-12)
    assert torch.equal(frozen.detach(), frozen_before)
    assert len(opt.state[frozen]) == 0
    assert set(opt.state[p1]) == {
        'step', 'square_avg', 'grad_avg', 'momentum_buffer'}
    assert opt.state[p0]['step'] == STEPS
    # Same lr everywhere would give a different p0: the groups' lrs count.
    same = reference([params[0]], [[g[0]] for g in grads], [0.01] * STEPS,
                     **kwargs)[0]
    assert np.abs(p0.detach().numpy() - same).max() > 1e-3


def test_float32_close_to_reference():
    params, grads = make_data(seed=4)
    kwargs = dict(alpha=0.9, eps=1e-3, momentum=0.9, weight_decay=1e-5)
    got = run(RMSpropTF, [p.float() for p in params],
              [[g.float() for g in s] for s in grads], lr=0.048, **kwargs)
    expected = reference(params, grads, [0.048] * STEPS, **kwargs)
    for g, e in zip(got, expected):
        assert g.dtype == np.float32
        np.testing.assert_allclose(g, e, rtol=1e-5, atol=1e-6)


def test_closure_and_grad_mode():
    target = torch.tensor([1.0, -2.0, 3.0], dtype=torch.float64)
    x = torch.zeros(3, dtype=torch.float64, requires_grad=True)
    opt = RMSpropTF([x], lr=0.1, eps=1e-3)
    x0 = x.detach().numpy().copy()

    def closure():
        opt.zero_grad()
        loss = ((x - target)**2).sum()
        loss.backward()
        return loss

    with torch.enable_grad():
        loss = opt.step(closure)
    assert loss.item() == pytest.approx(14.0)
    grad = 2 * (x0 - target.numpy())
    expected = reference([x0], [[grad]], [0.1], eps=1e-3)[0]
    np.testing.assert_allclose(x.detach().numpy(), expected, rtol=1e-12)
    assert x.grad_fn is None and x.requires_grad
    assert opt.step() is None  # without a closure


def test_sparse_gradient_raises():
    emb = torch.nn.Embedding(4, 3, sparse=True)
    emb(torch.tensor([0, 2])).sum().backward()
    opt = RMSpropTF(emb.parameters())
    with pytest.raises(RuntimeError, match='sparse'):
        opt.step()


@pytest.mark.parametrize('arg', ['lr', 'eps', 'alpha', 'momentum',
                                 'weight_decay'])
@pytest.mark.parametrize('value', [-0.1, float('nan')])
def test_invalid_arguments(arg, value):
    with pytest.raises(ValueError, match=arg):
        RMSpropTF([torch.zeros(1, requires_grad=True)], **{arg: value})


def test_zero_values_are_valid():
    RMSpropTF([torch.zeros(1, requires_grad=True)], lr=0.0, eps=0.0,
              alpha=0.0, momentum=0.0, weight_decay=0.0)


@pytest.mark.parametrize('kwargs', [
    dict(eps=1e-3, momentum=0.9, centered=True, weight_decay=0.01),
    dict(eps=1e-3, momentum=0.9, lr_in_momentum=False,
         decoupled_decay=True, weight_decay=0.01),
])
def test_state_dict_round_trip(kwargs):
    params, grads = make_data(seed=5)
    lr = 0.05
    uninterrupted = run(RMSpropTF, params, grads, lr=lr, **kwargs)

    first = [p.clone().requires_grad_() for p in params]
    opt = RMSpropTF(first, lr=lr, **kwargs)
    for step_grads in grads[:2]:
        for p, g in zip(first, step_grads):
            p.grad = g.clone()
        opt.step()
    buffer = io.BytesIO()
    torch.save(dict(params=[p.detach() for p in first],
                    optimizer=opt.state_dict()), buffer)
    del opt, first

    buffer.seek(0)
    ckpt = torch.load(buffer, weights_only=True)
    resumed = [p.clone().requires_grad_() for p in ckpt['params']]
    # Built with other options: load_state_dict must restore the groups'.
    opt = RMSpropTF(resumed, lr=1.0)
    opt.load_state_dict(ckpt['optimizer'])
    assert opt.param_groups[0]['lr'] == lr
    for step_grads in grads[2:]:
        for p, g in zip(resumed, step_grads):
            p.grad = g.clone()
        opt.step()
    for r, u in zip(resumed, uninterrupted):
        np.testing.assert_array_equal(r.detach().numpy(), u)
    assert opt.state[resumed[0]]['step'] == STEPS

    # Resuming with fresh state (square_avg back at ones, buffers at zero)
    # would not match: the loaded state matters.
    restarted = run(RMSpropTF, list(ckpt['params']), grads[2:], lr=lr,
                    **kwargs)
    assert max(np.abs(r - u).max()
               for r, u in zip(restarted, uninterrupted)) > 1e-4


def test_differs_from_torch_rmsprop():
    """torch.optim.RMSprop starts square_avg at zeros and adds eps outside
    the square root; ours must not do the same."""
    params, grads = make_data(seed=6)
    kwargs = dict(alpha=0.9, eps=1e-3, momentum=0.9)
    ours = run(RMSpropTF, params, grads, lr=0.01, **kwargs)
    theirs = run(torch.optim.RMSprop, params, grads, lr=0.01, **kwargs)
    expected = reference(params, grads, [0.01] * STEPS, **kwargs)
    for o, t, e in zip(ours, theirs, expected):
        np.testing.assert_allclose(o, e, rtol=1e-12)
        assert np.abs(o - t).max() > 1e-3

    # After one plain step, the two square averages differ by alpha (ones
    # vs zeros start) and the steps by where eps sits.
    p = torch.ones(3, dtype=torch.float64, requires_grad=True)
    q = p.detach().clone().requires_grad_()
    g = torch.tensor([0.01, 0.1, 1.0], dtype=torch.float64)
    ours_opt = RMSpropTF([p], lr=1.0, eps=1e-3)
    torch_opt = torch.optim.RMSprop([q], lr=1.0, alpha=0.9, eps=1e-3)
    p.grad, q.grad = g.clone(), g.clone()
    ours_opt.step()
    torch_opt.step()
    v_ours = ours_opt.state[p]['square_avg']
    v_torch = torch_opt.state[q]['square_avg']
    torch.testing.assert_close(v_ours - v_torch,
                               torch.full_like(g, 0.9))
    torch.testing.assert_close(
        p.detach(), 1 - g / torch.sqrt(0.9 + 0.1 * g**2 + 1e-3))
    torch.testing.assert_close(
        q.detach(), 1 - g / (torch.sqrt(0.1 * g**2) + 1e-3))


def test_registered_in_mmdist_and_mmengine():
    from mmengine.registry import OPTIMIZERS as MMENGINE_OPTIMIZERS

    from mmdist.registry import OPTIMIZERS
    assert OPTIMIZERS.get('RMSpropTF') is RMSpropTF
    assert MMENGINE_OPTIMIZERS.get('mmdist.RMSpropTF') is RMSpropTF
    x = torch.zeros(2, requires_grad=True)
    opt = MMENGINE_OPTIMIZERS.build(
        dict(type='mmdist.RMSpropTF', params=[x], lr=0.048, alpha=0.9,
             eps=1e-3, momentum=0.9, weight_decay=1e-5))
    assert type(opt) is RMSpropTF
    assert opt.defaults['eps'] == 1e-3 and opt.defaults['momentum'] == 0.9


def _model():
    return torch.nn.Sequential(
        torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4),
        torch.nn.Flatten(), torch.nn.Linear(4, 2))


@pytest.mark.parametrize('scope', [None, 'mmdist', 'mmpretrain'])
def test_build_optim_wrapper_from_config(scope):
    from mmengine.optim import OptimWrapper, build_optim_wrapper
    from mmengine.registry import DefaultScope
    model = _model()
    cfg = dict(optimizer=dict(type='mmdist.RMSpropTF', lr=0.048, alpha=0.9,
                              eps=1e-3, momentum=0.9, weight_decay=1e-5),
               paramwise_cfg=dict(norm_decay_mult=0))
    # overwrite_default_scope creates the instance with
    # DefaultScope.get_instance and restores the previous ones afterwards.
    with DefaultScope.overwrite_default_scope(scope):
        if scope is not None:
            assert DefaultScope.get_current_instance().scope_name == scope
        wrapper = build_optim_wrapper(model, copy.deepcopy(cfg))
    assert type(wrapper) is OptimWrapper
    opt = wrapper.optimizer
    assert type(opt) is RMSpropTF
    decay = {id(p): g['weight_decay'] for g in opt.param_groups
             for p in g['params']}
    bn = model[1]
    assert decay[id(bn.weight)] == 0 and decay[id(bn.bias)] == 0
    assert decay[id(model[0].weight)] == 1e-5
    assert decay[id(model[3].weight)] == 1e-5
    assert all(g['lr'] == 0.048 and g['eps'] == 1e-3
               for g in opt.param_groups)

    # One step through the wrapper follows the formulas per group.
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    model(torch.randn(2, 3, 3, 3)).sum().backward()
    grads = {n: p.grad.detach().clone() for n, p in model.named_parameters()}
    wrapper.step()
    for n, p in model.named_parameters():
        wd = 0.0 if n.startswith('1.') else 1e-5
        expected = reference([before[n].double()], [[grads[n].double()]],
                             [0.048], alpha=0.9, eps=1e-3, momentum=0.9,
                             weight_decay=wd)[0]
        np.testing.assert_allclose(p.detach().numpy(), expected, rtol=1e-5,
                                   atol=1e-7)


def test_bare_name_builds_in_the_mmdist_scope():
    from mmengine.registry import OPTIMIZERS as MMENGINE_OPTIMIZERS
    from mmengine.registry import DefaultScope
    x = torch.zeros(2, requires_grad=True)
    with DefaultScope.overwrite_default_scope('mmdist'):
        opt = MMENGINE_OPTIMIZERS.build(
            dict(type='RMSpropTF', params=[x], lr=0.1))
    assert type(opt) is RMSpropTF
