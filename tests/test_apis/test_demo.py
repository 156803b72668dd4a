"""The demos' table over seeds (mmdist/apis/demo.py); the demo runs
themselves are tested through tools/demo.py in tests/test_tools."""
import json
import os.path as osp

import pytest

from mmdist.apis.demo import TASKS, seeds_table
from tests.utils import run_tool


def _row(name, iters, top1, seconds):
    return dict(name=name, iters=iters, seconds=seconds,
                **{'accuracy/top1': top1})


def test_seeds_table_gives_mean_and_range():
    task = TASKS['classification']
    results = {
        2: [_row('teacher', 300, 50.0, 70.0), _row('DIST', 200, 40.0, 40.0)],
        0: [_row('teacher', 300, 47.5, 80.0), _row('DIST', 200, 46.0, 44.0)],
        1: [_row('teacher', 300, 45.1, 75.0), _row('DIST', 200, 43.0, 42.0)],
    }
    lines = seeds_table(task, results).splitlines()
    assert lines[0] == ('| model | iterations | top-1: mean (range) | '
                        'train time (s), mean |')
    # (50 + 47.5 + 45.1) / 3 = 47.53; (70 + 80 + 75) / 3 = 75.
    assert lines[2] == '| teacher | 300 | 47.53 (45.10-50.00) | 75 |'
    assert lines[3] == '| DIST | 200 | 43.00 (40.00-46.00) | 42 |'


def test_seeds_table_refuses_seeds_with_other_runs():
    task = TASKS['classification']
    results = {0: [_row('teacher', 300, 50.0, 70.0)],
               1: [_row('student', 300, 50.0, 70.0)]}
    with pytest.raises(ValueError, match='same runs'):
        seeds_table(task, results)


def test_tools_demo_over_two_seeds(tmp_path):
    work_dir = str(tmp_path / 'demo')
    proc = run_tool(['tools/demo.py', '--task', 'classification',
                     '--work-dir', work_dir, '--teacher-iters', '2',
                     '--iters', '2', '--num-train', '2', '--num-val', '1',
                     '--seed', '0', '1'])
    results = {}
    for seed in (0, 1):
        with open(osp.join(work_dir, f'seed{seed}', 'results.json')) as f:
            results[seed] = json.load(f)
    # The summary is the table of what each seed's run wrote.
    table = seeds_table(TASKS['classification'], results)
    with open(osp.join(work_dir, 'results_seeds.md')) as f:
        assert f.read() == table + '\n'
    assert table in proc.stdout
    assert len(table.splitlines()) == 6  # header, rule, four runs


def test_tools_demo_refuses_a_repeated_seed(tmp_path):
    work_dir = tmp_path / 'demo'
    proc = run_tool(['tools/demo.py', '--work-dir', str(work_dir),
                     '--seed', '1', '1'], check=False)
    assert proc.returncode != 0
    assert 'give each seed once' in proc.stderr
    assert not work_dir.exists()
