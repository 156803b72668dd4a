"""Resuming an iteration-based run (the Cityscapes DIST set-up) through
tools/train.py: killed with SIGKILL, started again with --resume, it trains
on the images and logs the losses of a run that was never killed, with 0
and 2 data-loader workers, after a sampler skip instead of a replay."""
import os
import os.path as osp
import signal
import subprocess
import sys
import time

import pytest

from mmdist.datasets import make_cityscapes
from tests.utils import (REPO, batches, kill_during, kill_tree,
                         last_run_losses, losses, run_tool)

ITERS = 8
# A user's config over the demo's DIST config: the R18-D8 student as a
# (random, seeded) teacher to keep it fast, every iteration logged, a
# checkpoint every 4, a hook that writes each batch's images and one that
# holds the run where a test kills it.
CONFIG = '''_base_ = '{repo}/configs/demo/dist_deeplabv3_r18_toy.py'
custom_imports = dict(imports=['mmdist', 'tests.record_batches'],
                      allow_failed_imports=False)
custom_hooks = [dict(type='TestRecordBatchesHook'), dict(type='TestPauseHook')]
model = dict(
    teacher=dict(cfg_path='{repo}/configs/demo/deeplabv3_r18_toy.py'),
    teacher_ckpt=None)
data_root = '{root}/'
train_dataloader = dict(batch_size=2, dataset=dict(data_root=data_root))
val_dataloader = dict(dataset=dict(data_root=data_root))
test_dataloader = val_dataloader
train_cfg = dict(max_iters={iters}, val_interval=100)
param_scheduler = [
    dict(type='PolyLR', eta_min=1e-4, power=0.9, begin=0, end={iters},
         by_epoch=False)
]
default_hooks = dict(
    logger=dict(interval=1), checkpoint=dict(interval=4, max_keep_ckpts=3))
randomness = dict(seed=0, deterministic=True)
'''
ENV = dict(PYTHONPATH=REPO)  # tests.record_batches


@pytest.fixture(scope='module')
def config(module_tmp):
    tmp = module_tmp('fast_resume')
    root = str(tmp / 'cityscapes')
    make_cityscapes(root, num_train=6, num_val=2, image_size=(64, 128))
    path = tmp / 'dist_toy_resume.py'
    path.write_text(CONFIG.format(repo=REPO, root=root, iters=ITERS))
    return str(path)


def workers(count):
    return ['--cfg-options', f'train_dataloader.num_workers={count}',
            f'train_dataloader.persistent_workers={count > 0}']


@pytest.fixture(scope='module')
def never_killed(config, module_tmp):
    """Uninterrupted runs with 0 and 2 workers."""
    runs = {}
    for count in (0, 2):
        work_dir = str(module_tmp(f'never_killed_{count}'))
        run_tool(['tools/train.py', config, '--work-dir', work_dir,
                  *workers(count)], env=ENV)
        runs[count] = work_dir
    return runs


def test_uninterrupted_losses_do_not_depend_on_the_worker_count(
        never_killed):
    """Every sample loads under its own seed, and loading in the main
    process leaves the training's random stream (dropout) alone."""
    zero, two = (losses(never_killed[n]) for n in (0, 2))
    assert sorted(zero) == list(range(1, ITERS + 1))
    assert zero == two
    assert batches(never_killed[0]) == batches(never_killed[2])


@pytest.mark.parametrize('count', [0, pytest.param(2, marks=pytest.mark.slow)])
def test_killed_run_resumes_exactly_without_a_replay(count, config,
                                                     never_killed, tmp_path):
    killed = str(tmp_path / 'killed')
    args = [config, '--work-dir', killed, *workers(count)]
    returncode = kill_during(killed, args, 6, env=ENV)
    assert returncode == -signal.SIGKILL
    assert osp.isfile(osp.join(killed, 'iter_4.pth'))
    assert not osp.exists(osp.join(killed, f'iter_{ITERS}.pth'))
    resumed = run_tool(['tools/train.py', *args, '--resume'], env=ENV)
    log = resumed.stdout + resumed.stderr
    assert 'Resuming at iteration 4: the sampler starts at sample 8' in log
    assert 'Advance dataloader' not in log and 'Replaying' not in log
    expected = losses(never_killed[count])
    after = last_run_losses(killed)
    assert sorted(after) == list(range(5, ITERS + 1))
    assert {i: expected[i] for i in after} == after
    assert batches(killed) == batches(never_killed[count])


@pytest.mark.slow
@pytest.mark.parametrize('option, message', [
    ('resume_mode=replay', 'Advance dataloader 4 steps'),
    ('train_cfg.fast_resume=False',
     'Replaying 4 batches through the data pipeline to skip what was '
     'trained (fast_resume=False)'),
])
def test_replay_stays_available(option, message, config, never_killed,
                                tmp_path):
    """resume_mode=replay is MMEngine's own resume (the config is left as
    it is); fast_resume=False keeps mmdist's seeds and replays. Either way
    the trained batches are drawn again, and with per-sample seeds the
    losses are still the uninterrupted run's."""
    killed = str(tmp_path / 'killed')
    args = [config, '--work-dir', killed, *workers(0), option]
    assert kill_during(killed, args, 6, env=ENV) == -signal.SIGKILL
    resumed = run_tool(['tools/train.py', *args, '--resume'], env=ENV)
    assert message in resumed.stdout + resumed.stderr
    after = last_run_losses(killed)
    assert sorted(after) == list(range(5, ITERS + 1))
    if 'fast_resume' in option:
        expected = losses(never_killed[0])
        assert {i: expected[i] for i in after} == after


def _two_nodes(config: str, work_dir: str, flags: list, env: dict,
               port: int, kill_after: int = 0) -> str:
    """tools/dist_train.sh on two loopback "nodes" of one process each
    (NNODES=2, NODE_RANK=0/1, MASTER_ADDR=127.0.0.1), as on two machines;
    with ``kill_after``, both are killed (SIGKILL) where TestPauseHook holds
    them after that iteration. Returns their output."""
    from tests.record_batches import PAUSED
    os.makedirs(osp.dirname(work_dir), exist_ok=True)
    logs = [str(osp.join(osp.dirname(work_dir), f'node{r}.log'))
            for r in (0, 1)]
    procs = []
    for rank, log in enumerate(logs):
        node_env = dict(env, NNODES='2', NODE_RANK=str(rank),
                        MASTER_ADDR='127.0.0.1', PORT=str(port))
        if kill_after:
            node_env['TEST_PAUSE_AFTER_ITER'] = str(kill_after)
        with open(log, 'w') as out:
            procs.append(subprocess.Popen(
                ['bash', 'tools/dist_train.sh', config, '1', '--work-dir',
                 work_dir, *flags], cwd=REPO, env=node_env, stdout=out,
                stderr=subprocess.STDOUT, start_new_session=True))
    try:
        if kill_after:
            deadline = time.time() + 600
            while not osp.exists(osp.join(work_dir, PAUSED)):
                assert all(p.poll() is None for p in procs), \
                    'a node ended before the kill'
                assert time.time() < deadline, 'the nodes did not get there'
                time.sleep(0.2)
            time.sleep(1)  # the other node reaches the pause too
            for proc in procs:
                kill_tree(proc.pid)
        codes = [proc.wait(timeout=900) for proc in procs]
    finally:
        for proc in procs:
            if proc.poll() is None:
                kill_tree(proc.pid)
                proc.wait()
    text = ''.join(open(log).read() for log in logs)
    expected = [-signal.SIGKILL] * 2 if kill_after else [0, 0]
    assert codes == expected, text[-6000:]
    return text


@pytest.mark.slow
def test_two_processes_resume_on_each_ranks_samples(config, tmp_path):
    """The segmentation config as written (SyncBN in student and teacher)
    on 2 CPU processes (gloo, tools/dist_train.sh): each rank's shard of the
    stream. Then the same on two loopback "nodes", killed after iteration 5
    and resumed: each rank gets the images, and the run logs the losses, of
    the run that was never killed."""
    env = dict(os.environ, PYTHON=sys.executable, PORT='29631',
               OMP_NUM_THREADS='1', PYTHONWARNINGS='ignore', **ENV)
    whole = str(tmp_path / 'whole')
    proc = subprocess.run(
        ['bash', 'tools/dist_train.sh', config, '2', '--work-dir', whole,
         *workers(2)], cwd=REPO, env=env, capture_output=True, text=True,
        timeout=900)
    assert proc.returncode == 0, proc.stderr[-6000:]
    assert 'SyncBN layers run on CPU, their batch statistics shared' in \
        proc.stdout + proc.stderr
    seen = batches(whole)
    assert sorted(seen) == [(i, r) for i in range(ITERS) for r in (0, 1)]
    # The ranks take alternate samples of one shuffled stream.
    assert seen[(0, 0)] != seen[(0, 1)]

    # (Without loading workers: the batches do not depend on them.)
    killed = str(tmp_path / 'nodes' / 'killed')
    _two_nodes(config, killed, workers(0), env, 29632, kill_after=5)
    assert not osp.exists(osp.join(killed, f'iter_{ITERS}.pth'))
    log = _two_nodes(config, killed, ['--resume', *workers(0)], env, 29633)
    # (Logged by rank 0; the batches show both ranks.)
    assert 'the sampler starts at sample 8 of this rank' in log
    assert batches(killed) == seen
    expected = losses(whole)
    assert last_run_losses(killed) == {i: expected[i]
                                       for i in range(5, ITERS + 1)}


@pytest.mark.slow
@pytest.mark.parametrize('mode', ['fast', 'replay'])
def test_kill_while_saving_leaves_a_checkpoint_to_resume_from(
        mode, config, never_killed, tmp_path):
    """Killed in the save of iter_8.pth, keeping one checkpoint: MMEngine's
    CheckpointHook (left in place by resume_mode=replay) has deleted
    iter_4.pth already and last_checkpoint names it, so --resume fails;
    mmdist's AtomicCheckpointHook still has it, whole, and the run resumes
    from it to the losses of the run that was never killed."""
    killed = str(tmp_path / 'killed')
    args = [config, '--work-dir', killed, *workers(0),
            'default_hooks.checkpoint.max_keep_ckpts=1', f'resume_mode={mode}']
    assert kill_during(killed, args, ITERS, env=ENV,
                       in_save=True) == -signal.SIGKILL
    with open(osp.join(killed, 'last_checkpoint')) as f:
        assert f.read() == osp.join(killed, 'iter_4.pth')
    assert not osp.exists(osp.join(killed, f'iter_{ITERS}.pth'))
    resumed = run_tool(['tools/train.py', *args, '--resume'], env=ENV,
                       check=mode == 'fast')
    if mode == 'replay':
        assert not osp.exists(osp.join(killed, 'iter_4.pth'))
        assert resumed.returncode != 0
        assert 'iter_4.pth can not be found' in resumed.stderr
        return
    assert 'Resuming at iteration 4' in resumed.stdout + resumed.stderr
    expected = losses(never_killed[0])
    after = last_run_losses(killed)
    assert sorted(after) == list(range(5, ITERS + 1))
    assert {i: expected[i] for i in after} == after
    # One checkpoint kept, whole; nothing half-written left.
    saved = sorted(n for n in os.listdir(killed) if '.pth' in n)
    assert saved == [f'iter_{ITERS}.pth']
    with open(osp.join(killed, 'last_checkpoint')) as f:
        assert f.read() == osp.join(killed, f'iter_{ITERS}.pth')
