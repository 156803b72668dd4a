"""tools/slurm_train.sh and tools/slurm_test.sh on a machine without slurm:
stand-in ``srun`` and ``scontrol`` on PATH start the tasks here as slurm
would (SLURM_PROCID, SLURM_NTASKS, ...), 2 CPU processes as 2 ranks."""
import os
import os.path as osp
import subprocess
import sys

import pytest

from mmdist.datasets import make_cityscapes
from tests.test_tools.test_fast_resume import CONFIG
from tests.utils import REPO, batches, read_test_metrics

SRUN = r'''#!/usr/bin/env bash
# Stand-in for slurm's srun: writes its arguments to $SRUN_LOG, then runs
# --ntasks copies of the command here with the variables slurm sets.
echo "$@" > "$SRUN_LOG"
ntasks=1
while [ $# -gt 0 ]; do
    case "$1" in
        --ntasks=*) ntasks=${1#*=}; shift ;;
        -p) shift 2 ;;
        -*) shift ;;
        *) break ;;
    esac
done
pids=()
for ((i = 0; i < ntasks; i++)); do
    SLURM_PROCID=$i SLURM_NTASKS=$ntasks SLURM_LOCALID=$i \
        SLURM_NODELIST='cpu-node[1]' "$@" &
    pids+=($!)
done
rc=0
for pid in "${pids[@]}"; do wait "$pid" || rc=1; done
exit $rc
'''
SCONTROL = r'''#!/usr/bin/env bash
# Stand-in for "scontrol show hostname <nodelist>": the one host is here.
[ "$1 $2" = "show hostname" ] && echo 127.0.0.1
'''


@pytest.fixture
def slurm(tmp_path):
    """PATH with the stand-ins, and the file srun writes its flags to."""
    bin_dir = tmp_path / 'bin'
    bin_dir.mkdir()
    for name, text in (('srun', SRUN), ('scontrol', SCONTROL)):
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    log = str(tmp_path / 'srun_args')
    env = dict(os.environ, PATH=f'{bin_dir}:{os.environ["PATH"]}',
               SRUN_LOG=log, PYTHON=sys.executable, PYTHONPATH=REPO,
               MASTER_PORT='29641', OMP_NUM_THREADS='1',
               PYTHONWARNINGS='ignore', GPUS='2', CPUS_PER_TASK='1',
               SRUN_ARGS='--quotatype=auto')
    return env, log


@pytest.mark.slow
def test_slurm_scripts_train_and_test_two_ranks(slurm, tmp_path):
    env, log = slurm
    root = str(tmp_path / 'cityscapes')
    make_cityscapes(root, num_train=6, num_val=2, image_size=(64, 128))
    config = tmp_path / 'dist_toy_slurm.py'
    config.write_text(CONFIG.format(repo=REPO, root=root, iters=2))
    work_dir = str(tmp_path / 'work_dir')
    proc = subprocess.run(
        ['bash', 'tools/slurm_train.sh', 'debug', 'dist_toy', str(config),
         work_dir, '--cfg-options',
         'default_hooks.checkpoint.interval=2'],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-6000:]
    with open(log) as f:
        flags = f.read().split()
    assert flags[:9] == [
        '-p', 'debug', '--job-name=dist_toy', '--gres=gpu:2', '--ntasks=2',
        '--ntasks-per-node=2', '--cpus-per-task=1', '--kill-on-bad-exit=1',
        '--quotatype=auto']
    assert f'--work-dir={work_dir}' in flags
    assert flags[-1] == '--launcher=slurm'
    out = proc.stdout + proc.stderr
    assert 'Distributed launcher: slurm' in out
    # (MMEngine counts the ranks as GPUs.)
    assert 'Distributed training: True' in out and 'GPU number: 2' in out
    # Each rank trained its own shard of the batches.
    assert sorted(batches(work_dir)) == [(i, r) for i in range(2)
                                         for r in (0, 1)]
    checkpoint = osp.join(work_dir, 'iter_2.pth')
    assert osp.isfile(checkpoint)

    test_dir = str(tmp_path / 'test_dir')
    proc = subprocess.run(
        ['bash', 'tools/slurm_test.sh', 'debug', 'test_toy', str(config),
         checkpoint, '--work-dir', test_dir],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-6000:]
    with open(log) as f:
        assert f.read().split()[:3] == ['-p', 'debug', '--job-name=test_toy']
    assert 'mIoU' in read_test_metrics(test_dir)


def test_slurm_scripts_say_how_to_call_them():
    for script, usage in (('slurm_train.sh', 'CONFIG WORK_DIR'),
                          ('slurm_test.sh', 'CONFIG [CHECKPOINT]')):
        proc = subprocess.run(['bash', f'tools/{script}', 'debug'], cwd=REPO,
                              capture_output=True, text=True)
        assert proc.returncode == 2 and usage in proc.stderr
