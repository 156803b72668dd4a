"""Forward+backward time and peak memory of the DIST loss.

Compares mmdist's DIST loss with the DIST formula written out with autograd
(the authors' and MMRazor's way) and with a temperature KL-divergence KD loss
on the same logits, at the row counts that training meets:
RetinaNet's finest FPN level for 2 images (33,400 x 720, sigmoid), a
segmentation logit map (16,384 x 19, softmax) and RoI classification
(1,024 x 81, softmax).

Run: python benchmarks/bench_dist_loss.py [--repeat 5] [--device cpu]
Peak memory is what one step adds on top of its inputs: on CUDA from
torch.cuda.max_memory_allocated, on CPU from the peak resident set of a fresh
process that runs that one step.
"""
import argparse
import subprocess
import sys
import time
from typing import Callable, Dict

import torch
import torch.nn.functional as F

from mmdist.models.losses import dist_loss

SHAPES = {
    'retinanet 33400x720 sigmoid': (33400, 720, 'sigmoid'),
    'segmentation 16384x19 softmax': (16384, 19, 'softmax'),
    'roi 1024x81 softmax': (1024, 81, 'softmax'),
}


def plain_dist(s, t, activation):
    """The formula written out with autograd (beta = gamma = tau = 1)."""
    act = torch.sigmoid if activation == 'sigmoid' else (
        lambda x: torch.softmax(x, dim=1))
    y_s, y_t = act(s), act(t.detach())

    def pearson(a, b):
        a = a - a.mean(1, keepdim=True)
        b = b - b.mean(1, keepdim=True)
        return (a * b).sum(1) / (a.norm(dim=1) * b.norm(dim=1) + 1e-8)

    return (1 - pearson(y_s, y_t).mean()) + (1 - pearson(y_s.T, y_t.T).mean())


def kl_kd(s, t, activation):
    """Classic KD: KL(teacher || student) over the classes of each row."""
    return F.kl_div(
        F.log_softmax(s, dim=1), F.softmax(t.detach(), dim=1),
        reduction='batchmean')


LOSSES: Dict[str, Callable] = {
    'mmdist DIST': lambda s, t, a: dist_loss(s, t, activation=a),
    'plain DIST formula': plain_dist,
    'KL KD': kl_kd,
}


def status_bytes(field: str) -> int:
    """A memory field of /proc/self/status (VmRSS, VmHWM) in bytes."""
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith(field + ':'):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f'{field} not in /proc/self/status')


def peak_bytes_cpu(shape: str, loss: str) -> int:
    """Peak resident memory that one step adds, in a fresh process."""
    out = subprocess.run(
        [sys.executable, __file__, '--child', shape, loss],
        check=True, capture_output=True, text=True).stdout
    return int(out.split()[-1])


def make_step(shape: str, loss: str, device: str):
    rows, cols, activation = SHAPES[shape]
    gen = torch.Generator().manual_seed(0)
    student = torch.randn(rows, cols, generator=gen).to(device)
    teacher = torch.randn(rows, cols, generator=gen).to(device)
    loss_fn = LOSSES[loss]

    def step():
        s = student.clone().requires_grad_()
        loss_fn(s, teacher, activation).backward()
        return s.grad

    return step


def child(shape: str, loss: str) -> None:
    step = make_step(shape, loss, 'cpu')
    base = status_bytes('VmRSS')
    with open('/proc/self/clear_refs', 'w') as f:
        f.write('5')  # reset the peak (VmHWM) to the current RSS
    step()
    print(status_bytes('VmHWM') - base)


def run(device: str, repeat: int) -> None:
    print(f'device: {device}, threads: {torch.get_num_threads()}, '
          f'torch {torch.__version__}, forward+backward, '
          f'median of {repeat}')
    header = f'{"shape":32s}{"loss":22s}{"time ms":>10s}{"peak MiB":>10s}'
    print(header)
    print('-' * len(header))
    for name in SHAPES:
        for loss_name in LOSSES:
            step = make_step(name, loss_name, device)
            step()  # warm-up
            times = []
            for _ in range(repeat):
                if device == 'cuda':
                    torch.cuda.synchronize()
                start = time.perf_counter()
                step()
                if device == 'cuda':
                    torch.cuda.synchronize()
                times.append((time.perf_counter() - start) * 1e3)
            times.sort()
            if device == 'cuda':
                torch.cuda.reset_peak_memory_stats()
                base = torch.cuda.memory_allocated()
                step()
                peak = torch.cuda.max_memory_allocated() - base
            else:
                peak = peak_bytes_cpu(name, loss_name)
            print(f'{name:32s}{loss_name:22s}{times[len(times) // 2]:10.1f}'
                  f'{peak / 2**20:10.1f}', flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--repeat', type=int, default=5)
    parser.add_argument(
        '--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--child', nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
    else:
        run(args.device, args.repeat)


if __name__ == '__main__':
    main()
