"""mmdist.apis.runner: the CPU (gloo) process group of ``--launcher
pytorch``/``slurm`` ends with the block, not at interpreter exit."""
import os
import socket
import subprocess
import sys

import pytest
import torch

from tests.utils import REPO

# One rank: a DDP model kept in a reference cycle (as the Runner keeps it),
# trained one step inside cpu_distributed; then the threads left behind.
RANK = r'''
import os
import torch
from mmengine.config import Config
from torch.nn.parallel import DistributedDataParallel
from mmdist.apis import cpu_distributed


def threads():
    names = []
    for tid in os.listdir('/proc/self/task'):
        with open(f'/proc/self/task/{tid}/comm') as f:
            names.append(f.read().strip())
    return sorted(names)


with cpu_distributed(Config(), 'pytorch'):
    holder = dict(model=DistributedDataParallel(torch.nn.Linear(4, 2)))
    holder['self'] = holder
    holder['model'](torch.ones(3, 4)).sum().backward()
    during = threads()
    del holder
print('during', during)
print('after', threads())
'''
GLOO_THREADS = ('pt_gloo_runloop', 'gloo_tcp_loop', 'pt_tcpstore_uv')


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


@pytest.mark.skipif(torch.cuda.is_available(),
                    reason='cpu_distributed only acts without CUDA')
@pytest.mark.skipif(not os.path.isdir('/proc/self/task'),
                    reason='reads thread names from /proc')
def test_cpu_distributed_ends_gloo_before_exit():
    """A gloo group still held by a cycle at exit aborted a rank now and then
    ("terminate called without an active exception") after training."""
    port = str(free_port())
    procs = [
        subprocess.Popen(
            [sys.executable, '-c', RANK], cwd=REPO, text=True,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            env=dict(os.environ, PYTHONPATH=REPO, RANK=str(rank),
                     LOCAL_RANK=str(rank), WORLD_SIZE='2',
                     MASTER_ADDR='127.0.0.1', MASTER_PORT=port,
                     OMP_NUM_THREADS='1')) for rank in range(2)
    ]
    outputs = [proc.communicate(timeout=300) for proc in procs]
    for proc, (out, err) in zip(procs, outputs):
        assert proc.returncode == 0, err[-3000:]
        during, after = (line.split(' ', 1)[1]
                         for line in out.strip().splitlines()[-2:])
        # The group had its threads while it was in use ...
        assert 'pt_gloo_runloop' in during
        # ... and none is left once the block has ended.
        assert not [name for name in GLOO_THREADS if name in after], after
