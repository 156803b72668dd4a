"""SyncBN on CPU processes against batch norm over the whole batch in one
process, written with torch's own ``F.batch_norm`` (float64)."""
import pytest
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from mmdist.models.layers import CPUSyncBatchNorm, to_cpu_sync_bn
from tests.utils import run_ranks

# Unequal parts (as the last batch of an epoch can be), and one empty.
SPLITS = {'4d': (3, 5), 'empty part': (0, 4), '2d': (6, 2)}


def _batch(kind: str, seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    count = sum(SPLITS[kind])
    shape = (count, 4) if kind == '2d' else (count, 4, 3, 5)
    x = torch.randn(shape, generator=generator, dtype=torch.float64) * 3 + 1
    weight = torch.rand(4, generator=generator, dtype=torch.float64) + 0.5
    bias = torch.randn(4, generator=generator, dtype=torch.float64)
    # A loss that weighs every output differently: its gradient is no
    # constant, which would vanish through the normalisation.
    probe = torch.randn(shape, generator=generator, dtype=torch.float64)
    return x, weight, bias, probe


def _rank_step(rank: int, world_size: int, init_file: str, kind: str,
               steps: int) -> dict:
    """One process: its part of the batch through a SyncBN, ``steps``
    times in training mode, then once in eval mode."""
    dist.init_process_group('gloo', init_method=f'file://{init_file}',
                            rank=rank, world_size=world_size)
    try:
        x, weight, bias, probe = _batch(kind)
        start = sum(SPLITS[kind][:rank])
        part = slice(start, start + SPLITS[kind][rank])
        x = x[part].clone().requires_grad_()
        bn = nn.SyncBatchNorm(4, momentum=0.3).double()
        with torch.no_grad():
            bn.weight.copy_(weight)
            bn.bias.copy_(bias)
        model = nn.Sequential(bn)
        assert to_cpu_sync_bn(model) == 1
        bn = model[0]
        for _ in range(steps):
            out = bn(x)
        (out * probe[part]).sum().backward()
        bn.eval()
        with torch.no_grad():
            evaluated = bn(x.detach())
        return dict(out=out.detach(), grad_x=x.grad,
                    grad_weight=bn.weight.grad, grad_bias=bn.bias.grad,
                    running_mean=bn.running_mean.clone(),
                    running_var=bn.running_var.clone(),
                    tracked=int(bn.num_batches_tracked), eval=evaluated)
    finally:
        dist.destroy_process_group()


@pytest.mark.parametrize('kind', sorted(SPLITS))
def test_two_processes_compute_batch_norm_of_the_whole_batch(kind, tmp_path):
    steps = 2
    ranks = run_ranks(_rank_step, 2, str(tmp_path), kind, steps)
    x, weight, bias, probe = _batch(kind)
    x.requires_grad_()
    weight.requires_grad_()
    bias.requires_grad_()
    running_mean, running_var = torch.zeros(4, dtype=torch.float64), \
        torch.ones(4, dtype=torch.float64)
    for _ in range(steps):
        expected = F.batch_norm(x, running_mean, running_var, weight, bias,
                                training=True, momentum=0.3, eps=1e-5)
    (expected * probe).sum().backward()
    evaluated = F.batch_norm(x.detach(), running_mean, running_var,
                             weight.detach(), bias.detach(), training=False,
                             eps=1e-5)
    parts = torch.tensor(SPLITS[kind]).cumsum(0).tolist()
    bounds = list(zip([0] + parts[:-1], parts))
    for rank, (start, end) in zip(ranks, bounds):
        torch.testing.assert_close(rank['out'], expected[start:end].detach())
        torch.testing.assert_close(rank['grad_x'], x.grad[start:end])
        torch.testing.assert_close(rank['running_mean'], running_mean)
        torch.testing.assert_close(rank['running_var'], running_var)
        torch.testing.assert_close(rank['eval'], evaluated[start:end])
        assert rank['tracked'] == steps
    # Each process's weight and bias gradients are its own part's; DDP
    # averages them, so their sum is the whole batch's.
    torch.testing.assert_close(sum(r['grad_weight'] for r in ranks),
                               weight.grad)
    torch.testing.assert_close(sum(r['grad_bias'] for r in ranks), bias.grad)


def test_without_a_process_group_it_is_batch_norm():
    torch.manual_seed(0)
    bn = nn.SyncBatchNorm(3).double()
    plain = nn.BatchNorm2d(3).double()
    assert to_cpu_sync_bn(nn.Sequential(bn)) == 1
    assert type(bn) is CPUSyncBatchNorm
    assert set(bn.state_dict()) == set(plain.state_dict())
    x = torch.randn(4, 3, 2, 2, dtype=torch.float64)
    torch.testing.assert_close(bn(x), plain(x))
    torch.testing.assert_close(bn.running_var, plain.running_var)


def test_a_1d_input_is_refused():
    bn = nn.SyncBatchNorm(3)
    to_cpu_sync_bn(nn.Sequential(bn))
    with pytest.raises(ValueError, match='at least 2D'):
        bn(torch.zeros(3))
