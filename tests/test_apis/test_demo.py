"""The demos' tables (mmdist/apis/demo/tables.py); the demo runs
themselves, over one seed and two, are tested through tools/demo.py in
tests/test_tools/test_demo.py."""
import pytest

from mmdist.apis.demo import TASKS, seeds_table, write_table
from tests.utils import run_tool


def _row(name, iters, top1, seconds, latency_ms=10.0):
    return dict(name=name, iters=iters, seconds=seconds,
                latency_ms=latency_ms, **{'accuracy/top1': top1})


def test_seeds_table_gives_mean_and_range():
    task = TASKS['classification']
    results = {
        2: [_row('teacher', 300, 50.0, 70.0, 8.0),
            _row('DIST', 200, 40.0, 40.0, 3.0)],
        0: [_row('teacher', 300, 47.5, 80.0, 9.0),
            _row('DIST', 200, 46.0, 44.0, 2.0)],
        1: [_row('teacher', 300, 45.1, 75.0, 10.0),
            _row('DIST', 200, 43.0, 42.0, 4.0)],
    }
    lines = seeds_table(task, results).splitlines()
    assert lines[0] == ('| model | iterations | top-1: mean (range) | '
                        "latency (ms), mean | of the teacher's | "
                        'train time (s), mean |')
    # (50 + 47.5 + 45.1) / 3 = 47.53; (70 + 80 + 75) / 3 = 75; latency
    # 9 ms and 3 ms, a third of the teacher's.
    assert lines[2] == ('| teacher | 300 | 47.53 (45.10-50.00) | 9.0 | '
                        '1.00x | 75 |')
    assert lines[3] == ('| DIST | 200 | 43.00 (40.00-46.00) | 3.0 | 0.33x | '
                        '42 |')


def test_the_table_gives_each_models_share_of_the_teachers_latency(
        tmp_path):
    task = TASKS['classification']
    path = str(tmp_path / 'results.md')
    table = write_table(task, [_row('teacher', 300, 50.0, 70.0, 40.0),
                               _row('DIST', 200, 45.0, 40.0, 10.0)], path)
    assert table.splitlines()[3] == \
        '| DIST | 200 | 45.00 | 10.0 | 0.25x | 40 |'
    with open(path) as f:
        assert f.read() == table + '\n'


def test_seeds_table_refuses_seeds_with_other_runs():
    task = TASKS['classification']
    results = {0: [_row('teacher', 300, 50.0, 70.0)],
               1: [_row('student', 300, 50.0, 70.0)]}
    with pytest.raises(ValueError, match='same runs'):
        seeds_table(task, results)


def test_tools_demo_refuses_a_repeated_seed(tmp_path):
    work_dir = tmp_path / 'demo'
    proc = run_tool(['tools/demo.py', '--work-dir', str(work_dir),
                     '--seed', '1', '1'], check=False)
    assert proc.returncode != 0
    assert 'give each seed once' in proc.stderr
    assert not work_dir.exists()
