"""RMSprop with TensorFlow's conventions (the DIST ImageNet recipe's
optimizer)."""
from typing import Callable, Iterable, Optional, Union

import torch
from torch.optim import Optimizer

from mmdist.registry import OPTIMIZERS


@OPTIMIZERS.register_module()
class RMSpropTF(Optimizer):
    """RMSprop as TensorFlow computes it.

    It differs from :class:`torch.optim.RMSprop` in three ways: the running
    mean of squared gradients starts at ones rather than zeros, ``eps`` is
    added inside the square root rather than outside it, and with momentum
    the learning rate is by default folded into the momentum buffer (so a
    change of ``lr`` acts on new steps only). The DIST authors' ImageNet
    recipe uses it with ``lr=0.048, alpha=0.9, eps=1e-3, momentum=0.9``.

    For a parameter ``p`` with gradient ``g``, each step computes::

        # weight decay
        p = p - lr * weight_decay * p      # decoupled_decay=True
        g = g + weight_decay * p           # decoupled_decay=False
        # second moment (v starts at 1)
        v = alpha * v + (1 - alpha) * g ** 2
        # denominator (m starts at 0)
        m = alpha * m + (1 - alpha) * g    # centered=True only
        d = sqrt(v - m ** 2 + eps)         # centered=True
        d = sqrt(v + eps)                  # centered=False
        # update (b starts at 0)
        b = momentum * b + lr * g / d; p = p - b    # lr_in_momentum=True
        b = momentum * b + g / d; p = p - lr * b    # lr_in_momentum=False
        p = p - lr * g / d                          # momentum=0

    Args:
        params: The parameters to optimize, or dicts of param groups.
        lr: Learning rate. Defaults to 0.01.
        alpha: Smoothing constant of the running averages. Defaults to 0.9.
        eps: Added to the averaged squared gradient inside the square root.
            Defaults to 1e-10.
        weight_decay: L2 penalty (coupled) or decay rate (decoupled).
            Defaults to 0.
        momentum: Momentum factor; 0 disables the buffer. Defaults to 0.
        centered: Normalize by an estimate of the gradient's variance
            instead of its uncentered second moment. Defaults to False.
        decoupled_decay: Shrink the parameter directly by
            ``lr * weight_decay`` instead of adding ``weight_decay * p`` to
            the gradient. Defaults to False.
        lr_in_momentum: Scale the step by ``lr`` before it enters the
            momentum buffer (TensorFlow) rather than after. Defaults to True.
    """

    def __init__(self,
                 params: Iterable[Union[torch.Tensor, dict]],
                 lr: float = 1e-2,
                 alpha: float = 0.9,
                 eps: float = 1e-10,
                 weight_decay: float = 0.0,
                 momentum: float = 0.0,
                 centered: bool = False,
                 decoupled_decay: bool = False,
                 lr_in_momentum: bool = True) -> None:
        for name, value in (('lr', lr), ('eps', eps), ('alpha', alpha),
                            ('momentum', momentum),
                            ('weight_decay', weight_decay)):
            if not value >= 0.0:
                raise ValueError(
                    f'RMSpropTF: {name} must be >= 0, got {value!r}')
        defaults = dict(
            lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay,
            momentum=momentum, centered=centered,
            decoupled_decay=decoupled_decay, lr_in_momentum=lr_in_momentum)
        super().__init__(params, defaults)

    def __setstate__(self, state: dict) -> None:
        super().__setstate__(state)
        for group in self.param_groups:
            group.setdefault('momentum', 0.0)
            group.setdefault('centered', False)
            group.setdefault('decoupled_decay', False)
            group.setdefault('lr_in_momentum', True)

    @torch.no_grad()
    def step(self,
             closure: Optional[Callable[[], float]] = None
             ) -> Optional[float]:
        """Perform one optimization step.

        Args:
            closure: Re-evaluates the model and returns the loss; it is
                called with gradients enabled. Defaults to None.

        Returns:
            The closure's loss, or None without a closure.
        """
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()

        for group in self.param_groups:
            lr = group['lr']
            alpha = group['alpha']
            eps = group['eps']
            weight_decay = group['weight_decay']
            momentum = group['momentum']
            for p in group['params']:
                if p.grad is None:
                    continue
                grad = p.grad
                if grad.is_sparse:
                    raise RuntimeError(
                        'RMSpropTF does not support sparse gradients')

                state = self.state[p]
                if len(state) == 0:
                    state['step'] = 0
                    state['square_avg'] = torch.ones_like(
                        p, memory_format=torch.preserve_format)
                    if momentum > 0:
                        state['momentum_buffer'] = torch.zeros_like(
                            p, memory_format=torch.preserve_format)
                    if group['centered']:
                        state['grad_avg'] = torch.zeros_like(
                            p, memory_format=torch.preserve_format)
                state['step'] += 1

                if weight_decay != 0:
                    if group['decoupled_decay']:
                        p.mul_(1.0 - lr * weight_decay)
                    else:
                        grad = grad.add(p, alpha=weight_decay)

                square_avg = state['square_avg']
                square_avg.mul_(alpha).addcmul_(
                    grad, grad, value=1.0 - alpha)

                if group['centered']:
                    grad_avg = state.setdefault(
                        'grad_avg', torch.zeros_like(
                            p, memory_format=torch.preserve_format))
                    grad_avg.mul_(alpha).add_(grad, alpha=1.0 - alpha)
                    denom = square_avg.addcmul(
                        grad_avg, grad_avg, value=-1.0).add_(eps).sqrt_()
                else:
                    denom = square_avg.add(eps).sqrt_()

                if momentum > 0:
                    buf = state.setdefault(
                        'momentum_buffer', torch.zeros_like(
                            p, memory_format=torch.preserve_format))
                    if group['lr_in_momentum']:
                        buf.mul_(momentum).addcdiv_(grad, denom, value=lr)
                        p.sub_(buf)
                    else:
                        buf.mul_(momentum).addcdiv_(grad, denom)
                        p.add_(buf, alpha=-lr)
                else:
                    p.addcdiv_(grad, denom, value=-lr)

        return loss
