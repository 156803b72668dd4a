"""SyncBN on CPU processes: batch statistics shared over torch.distributed
(gloo), as torch's ``SyncBatchNorm`` shares them between GPUs.

torch's ``SyncBatchNorm`` runs on CUDA (and a few other accelerators) only,
and DDP refuses to wrap one on CPU ("SyncBatchNorm layers only work with
GPU modules"). Every mmseg and mmyolo config uses SyncBN, so several CPU
processes (``tools/dist_train.sh`` without GPUs) could not run them.

In training, each process computes the mean and the sum of squared
deviations of its own part of the batch, per channel; the parts are
gathered and combined (Chan et al.'s parallel variance), so that every
process normalises with the statistics of the whole batch across
processes:

    N = sum_r n_r
    mean = sum_r n_r * mean_r / N
    var = sum_r (M2_r + n_r * (mean_r - mean)^2) / N
    y = (x - mean) / sqrt(var + eps) * weight + bias

The backward pass sums ``dy`` and ``dy * (x - mean)`` over every process,
as torch's CUDA kernel does, so the input's gradient is that of batch norm
over the whole batch; the weight's and bias's gradients stay local (DDP
averages them). The running statistics are updated with the unbiased
variance ``var * N / (N - 1)``. In eval mode, or with one process, it is
plain batch norm.
"""
from typing import Optional, Tuple

import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.autograd import Function


def _reduce_dims(x: Tensor) -> list:
    """Every dimension but the channels' (dim 1)."""
    return [0] + list(range(2, x.dim()))


def _channel_shape(x: Tensor) -> list:
    """``(1, C, 1, ...)``: a per-channel vector broadcast over ``x``."""
    return [1, x.shape[1]] + [1] * (x.dim() - 2)


def _gathered_stats(x: Tensor, group: Optional[object]
                    ) -> Tuple[Tensor, Tensor, Tensor]:
    """The mean, the biased variance and the count of every process's
    ``x`` together, per channel (float64 while combining)."""
    dims = _reduce_dims(x)
    count = x.numel() // x.shape[1]
    if count:
        mean = x.mean(dims)
        m2 = (x - mean.view(_channel_shape(x))).square().sum(dims)
    else:  # an empty part still takes part in the gather
        mean = m2 = x.new_zeros(x.shape[1])
    local = torch.cat([mean.double(), m2.double(),
                       mean.new_full((1, ), count, dtype=torch.float64)])
    parts = [torch.empty_like(local)
             for _ in range(dist.get_world_size(group))]
    dist.all_gather(parts, local, group=group)
    stats = torch.stack(parts)
    channels = x.shape[1]
    means, m2s = stats[:, :channels], stats[:, channels:2 * channels]
    counts = stats[:, -1:]
    total = counts.sum()
    if total == 0:
        raise ValueError('SyncBN: every process has an empty batch')
    mean = (counts * means).sum(0) / total
    m2 = (m2s + counts * (means - mean).square()).sum(0)
    return mean, m2 / total, total


class _SyncBatchNormFunction(Function):
    """Batch norm over the batches of every process (training mode)."""

    @staticmethod
    def forward(ctx, x: Tensor, weight: Optional[Tensor],
                bias: Optional[Tensor], running_mean: Optional[Tensor],
                running_var: Optional[Tensor], eps: float, momentum: float,
                group: Optional[object]) -> Tensor:
        mean, var, total = _gathered_stats(x, group)
        if running_mean is not None and total > 1:
            running_mean.mul_(1 - momentum).add_(
                mean.to(running_mean.dtype), alpha=momentum)
            unbiased = var * total / (total - 1)
            running_var.mul_(1 - momentum).add_(
                unbiased.to(running_var.dtype), alpha=momentum)
        invstd = (var + eps).rsqrt().to(x.dtype)
        mean = mean.to(x.dtype)
        shape = _channel_shape(x)
        x_hat = (x - mean.view(shape)) * invstd.view(shape)
        ctx.save_for_backward(x_hat, invstd, weight)
        ctx.total, ctx.group = total, group
        ctx.has_weight, ctx.has_bias = weight is not None, bias is not None
        out = x_hat
        if weight is not None:
            out = out * weight.view(shape)
        if bias is not None:
            out = out + bias.view(shape)
        return out

    @staticmethod
    def backward(ctx, grad_out: Tensor):
        x_hat, invstd, weight = ctx.saved_tensors
        dims, shape = _reduce_dims(grad_out), _channel_shape(grad_out)
        grad_out = grad_out.contiguous()
        sum_dy = grad_out.sum(dims)
        sum_dy_xhat = (grad_out * x_hat).sum(dims)
        # The gradient of the statistics: sums over every process's batch.
        summed = torch.cat([sum_dy, sum_dy_xhat]).double()
        dist.all_reduce(summed, group=ctx.group)
        channels = grad_out.shape[1]
        mean_dy = (summed[:channels] / ctx.total).to(grad_out.dtype)
        mean_dy_xhat = (summed[channels:] / ctx.total).to(grad_out.dtype)
        scale = invstd if weight is None else invstd * weight
        grad_x = (grad_out - mean_dy.view(shape)
                  - x_hat * mean_dy_xhat.view(shape)) * scale.view(shape)
        grad_weight = sum_dy_xhat if ctx.has_weight else None
        grad_bias = sum_dy if ctx.has_bias else None
        return grad_x, grad_weight, grad_bias, None, None, None, None, None


def sync_batch_norm(x: Tensor, weight: Optional[Tensor],
                    bias: Optional[Tensor], running_mean: Optional[Tensor],
                    running_var: Optional[Tensor], eps: float,
                    momentum: float, group: Optional[object] = None
                    ) -> Tensor:
    """Batch norm in training mode over the batches of every process of
    ``group`` (torch.distributed, any backend; gloo on CPU).

    Args:
        x: ``(N, C, ...)``, this process's part of the batch.
        weight, bias: ``(C,)`` or None.
        running_mean, running_var: ``(C,)`` buffers updated in place with
            ``momentum``, or None.
        eps: Added to the variance.
        momentum: The running statistics' update factor.
        group: The process group; None is the default (world) group.

    Returns:
        ``x`` normalised with the statistics of the whole batch.
    """
    if x.dim() < 2 or x.shape[1] == 0:
        raise ValueError(f'SyncBN expects (N, C, ...) with C > 0; got '
                         f'{tuple(x.shape)}')
    return _SyncBatchNormFunction.apply(x, weight, bias, running_mean,
                                        running_var, eps, momentum, group)


class CPUSyncBatchNorm(nn.modules.batchnorm._BatchNorm):
    """What a ``torch.nn.SyncBatchNorm`` becomes in several CPU processes.

    Same parameters, buffers and state-dict keys (``to_cpu_sync_bn`` swaps
    the class of an existing module), and the same computation: statistics
    over every process's batch in training, plain batch norm in eval mode
    or with one process. Not a ``SyncBatchNorm`` subclass, which DDP
    refuses on CPU; on a GPU, torch's own runs.
    """

    process_group: Optional[object] = None

    def _check_input_dim(self, x: Tensor) -> None:
        if x.dim() < 2:
            raise ValueError(f'expected at least 2D input (got {x.dim()}D '
                             'input)')

    def forward(self, x: Tensor) -> Tensor:
        self._check_input_dim(x)
        sync = (self.training and dist.is_available()
                and dist.is_initialized()
                and dist.get_world_size(self.process_group) > 1)
        if not sync:
            return super().forward(x)
        momentum = 0.0 if self.momentum is None else self.momentum
        if self.track_running_stats:
            self.num_batches_tracked.add_(1)
            if self.momentum is None:  # cumulative moving average
                momentum = 1.0 / float(self.num_batches_tracked)
        track = self.track_running_stats
        return sync_batch_norm(x, self.weight, self.bias,
                               self.running_mean if track else None,
                               self.running_var if track else None,
                               self.eps, momentum, self.process_group)


def to_cpu_sync_bn(model: nn.Module) -> int:
    """Turn every ``torch.nn.SyncBatchNorm`` of ``model`` into a
    :class:`CPUSyncBatchNorm`, in place; return how many.

    The modules keep their parameters, buffers and process group: only
    their class changes.
    """
    count = 0
    for module in model.modules():
        if isinstance(module, nn.SyncBatchNorm):
            module.__class__ = CPUSyncBatchNorm
            count += 1
    return count
