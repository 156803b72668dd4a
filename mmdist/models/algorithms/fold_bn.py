"""Fold frozen BatchNorm into the convolution before it.

A frozen teacher's BatchNorm (eval mode, running statistics) is an affine
map per channel. Where a convolution's output goes to a BatchNorm and
nowhere else, the two are one convolution:

    s = gamma / sqrt(running_var + eps)
    W' = W * s              (per output channel)
    b' = (b - running_mean) * s + beta

and the BatchNorm becomes an identity. Which convolution feeds which
BatchNorm is not read from the modules' order (ResNet registers
``downsample`` after ``conv3``/``bn3``, and nothing forces a model's
attributes to follow its forward): one forward of the model on a
generated input, with an autograd graph, shows each BatchNorm's input and
who else reads each convolution's output. A pair is folded only when every
call of the convolution goes to that BatchNorm alone and every call of the
BatchNorm reads that convolution; everything else (a BatchNorm after a
pooling, a sum or an activation, a convolution whose output is also read
elsewhere, modules named in ``skip``) is left as it is.

The convolutions folded into are those whose forward is linear in their
stored weight and adds their ``bias``: ``nn.Conv2d`` (and mmcv's wrapper of
it) and mmcv's modulated deformable convolutions. Weight-standardised
convolutions and DCNv1 (no bias) are left alone.
"""
from collections import Counter, defaultdict
from typing import (Callable, Dict, Iterable, Iterator, List, NamedTuple, Set,
                    Tuple)

import torch
from torch import Tensor, nn
from torch.nn.modules.batchnorm import _BatchNorm


def _foldable_convs() -> Tuple[type, ...]:
    """Convolution classes (exactly these: a subclass may transform its
    weight) whose output is linear in ``weight`` plus ``bias``."""
    types: List[type] = [nn.Conv2d]
    try:
        from mmcv.cnn.bricks.wrappers import Conv2d
        types.append(Conv2d)
    except ImportError:
        pass
    try:
        from mmcv.ops import ModulatedDeformConv2d, ModulatedDeformConv2dPack
        types += [ModulatedDeformConv2d, ModulatedDeformConv2dPack]
    except ImportError:
        pass
    return tuple(types)


def _frozen_bn(module: nn.Module) -> bool:
    """A BatchNorm that normalises with its running statistics."""
    return (isinstance(module, _BatchNorm) and not module.training
            and module.track_running_stats
            and module.running_mean is not None)


def _tensors(value: object) -> Iterator[Tensor]:
    if isinstance(value, Tensor):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _tensors(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _tensors(item)


def _consumers(roots: Iterable) -> Counter:
    """How many times each autograd node is read: by other nodes, and as an
    output of the forward."""
    counts: Counter = Counter(roots)
    seen, stack = set(), list(counts)
    while stack:
        node = stack.pop()
        if node in seen:
            continue
        seen.add(node)
        for parent, _ in node.next_functions:
            if parent is not None:
                counts[parent] += 1
                stack.append(parent)
    return counts


def conv_bn_pairs(model: nn.Module, forward: Callable[[], object],
                  skip: Iterable[str] = ()) -> List[Tuple[str, str]]:
    """The (convolution, BatchNorm) module names that can be folded.

    Args:
        model: The model in eval mode.
        forward: Runs the model once on an input that requires grad (so
            that every output has an autograd graph) and returns its
            outputs.
        skip: Module names never folded (a recorder reads them).

    Returns:
        Pairs of module names, as ``model.named_modules()`` gives them.
    """
    foldable, skip = _foldable_convs(), set(skip)
    convs = {m: n for n, m in model.named_modules()
             if type(m) in foldable and n not in skip}
    bns = {m: n for n, m in model.named_modules()
           if _frozen_bn(m) and n not in skip}
    conv_out: Dict[str, List] = defaultdict(list)  # name -> output nodes
    bn_in: Dict[str, List] = defaultdict(list)  # name -> input nodes

    def after_conv(module, args, output):
        conv_out[convs[module]].append(output.grad_fn)

    def before_bn(module, args):
        bn_in[bns[module]].append(args[0].grad_fn)

    hooks = [m.register_forward_hook(after_conv) for m in convs]
    hooks += [m.register_forward_pre_hook(before_bn) for m in bns]
    try:
        with torch.enable_grad():
            outputs = forward()
        roots = [t.grad_fn for t in _tensors(outputs)
                 if t.grad_fn is not None]
    finally:
        for hook in hooks:
            hook.remove()
    counts = _consumers(roots)
    conv_of = {node: name for name, nodes in conv_out.items()
               for node in nodes if node is not None}
    pairs = []
    for bn, nodes in bn_in.items():
        sources = {conv_of.get(node) for node in nodes}
        if len(sources) != 1 or None in sources:
            continue
        conv, = sources
        calls = conv_out[conv]
        if set(calls) == set(nodes) and all(counts[n] == 1 for n in calls):
            pairs.append((conv, bn))
    return sorted(pairs)


def _folded(weight: Tensor, bias: Tensor, mean: Tensor, var: Tensor,
            gamma: Tensor, beta: Tensor,
            eps: float) -> Tuple[Tensor, Tensor]:
    """The folded weight and bias, computed in float64."""
    f64 = torch.float64
    scale = gamma.to(f64) / torch.sqrt(var.to(f64) + eps)
    new_weight = weight.to(f64) * scale.view(-1, *([1] * (weight.dim() - 1)))
    new_bias = (bias.to(f64) - mean.to(f64)) * scale + beta.to(f64)
    return new_weight.to(weight.dtype), new_bias.to(weight.dtype)


def _bn_affine(bn: nn.Module) -> Tuple[Tensor, Tensor]:
    ones = torch.ones_like(bn.running_mean)
    gamma = bn.weight.detach() if bn.weight is not None else ones
    beta = bn.bias.detach() if bn.bias is not None else ones * 0
    return gamma, beta


def _set_module(model: nn.Module, name: str, module: nn.Module) -> None:
    parent, _, child = name.rpartition('.')
    setattr(model.get_submodule(parent) if parent else model, child, module)


class Folded(NamedTuple):
    """A BatchNorm folded into a convolution (module names, and the
    BatchNorm's epsilon, which the identity in its place no longer
    holds)."""
    conv: str
    bn: str
    eps: float


def fold_conv_bn(model: nn.Module,
                 pairs: List[Tuple[str, str]]) -> List[Folded]:
    """Fold each BatchNorm into its convolution, in place; the BatchNorm
    becomes ``nn.Identity`` (so ``conv.bias`` appears and the BatchNorm's
    parameters and buffers go from the state dict)."""
    folded = []
    for conv_name, bn_name in pairs:
        conv, bn = model.get_submodule(conv_name), model.get_submodule(
            bn_name)
        weight = conv.weight.detach()
        bias = conv.bias.detach() if conv.bias is not None else \
            torch.zeros(weight.size(0), dtype=weight.dtype,
                        device=weight.device)
        gamma, beta = _bn_affine(bn)
        new_weight, new_bias = _folded(weight, bias, bn.running_mean,
                                       bn.running_var, gamma, beta, bn.eps)
        requires_grad = conv.weight.requires_grad
        conv.weight = nn.Parameter(new_weight, requires_grad=requires_grad)
        conv.bias = nn.Parameter(new_bias, requires_grad=requires_grad)
        _set_module(model, bn_name, nn.Identity())
        folded.append(Folded(conv_name, bn_name, bn.eps))
    return folded


def fold_state_dict(state_dict: Dict[str, Tensor], folded: List[Folded],
                    prefix: str = '') -> Set[str]:
    """Fold the unfolded weights of a folded model's pairs in a state dict,
    in place (a checkpoint saved before folding, loaded into a model folded
    since).

    Args:
        state_dict: The state dict; changed in place.
        folded: What :func:`fold_conv_bn` returned for the model.
        prefix: The model's prefix in the state dict (``'teacher.'``).

    Returns:
        The convolutions folded (those whose BatchNorm was in the state
        dict).
    """
    done = set()
    for pair in folded:
        c, b = prefix + pair.conv + '.', prefix + pair.bn + '.'
        if b + 'running_mean' not in state_dict:
            continue
        weight = state_dict[c + 'weight']
        bias = state_dict.get(c + 'bias')
        if bias is None:
            bias = weight.new_zeros(weight.size(0))
        mean = state_dict[b + 'running_mean']
        var = state_dict[b + 'running_var']
        gamma = state_dict.get(b + 'weight', torch.ones_like(mean))
        beta = state_dict.get(b + 'bias', torch.zeros_like(mean))
        state_dict[c + 'weight'], state_dict[c + 'bias'] = _folded(
            weight, bias, mean, var, gamma, beta, pair.eps)
        for key in [k for k in state_dict if k.startswith(b)]:
            del state_dict[key]
        done.add(pair.conv)
    return done


def fold_batch_norm(model: nn.Module, forward: Callable[[], object],
                    skip: Iterable[str] = ()) -> List[Folded]:
    """Find the foldable pairs of ``model`` (:func:`conv_bn_pairs`) and
    fold them in place; returns what was folded."""
    with torch.no_grad():
        pairs = conv_bn_pairs(model, forward, skip)
        return fold_conv_bn(model, pairs)


def fold_model_batch_norm(model: nn.Module,
                          size: Tuple[int, int] = (64, 64)) -> List[Folded]:
    """:func:`fold_batch_norm` for an OpenMMLab model alone (a teacher
    evaluated by ``tools/test.py --teacher``), traced through its
    ``mode='tensor'`` forward on a generated image, or, where that needs
    data samples (a two-stage detector), through its ``extract_feat``."""
    def forward():
        image = torch.randn(1, 3, *size, requires_grad=True)
        try:
            return model(image, mode='tensor')
        except Exception:
            return model.extract_feat(image)
    return fold_batch_norm(model, forward)
