"""A shortened `make demo`: the same tool and configs, a few iterations."""
import json
import math
import os.path as osp

from tests.utils import run_tool


def test_shortened_demo(tmp_path):
    work_dir = str(tmp_path / 'demo')
    proc = run_tool(['tools/demo.py', '--work-dir', work_dir,
                     '--teacher-iters', '4', '--iters', '4', '--num-train',
                     '8', '--num-val', '2'])
    with open(osp.join(work_dir, 'results.json')) as f:
        results = json.load(f)
    assert [r['name'] for r in results] == [
        'teacher (R101-D8)', 'student alone (R18-D8)', 'student + KD',
        'student + DIST'
    ]
    for row in results:
        assert row['iters'] == 4
        for key in ('mIoU', 'mAcc', 'aAcc'):
            assert math.isfinite(row[key]) and 0 <= row[key] <= 100
    with open(osp.join(work_dir, 'curves.png'), 'rb') as f:
        assert f.read(8) == b'\x89PNG\r\n\x1a\n'
    with open(osp.join(work_dir, 'results.md')) as f:
        table = f.read()
    assert table.startswith('| model | iterations | mIoU')
    assert table in proc.stdout  # the table ends the demo's output
    for step in range(1, 6):
        assert f'[{step}/5]' in proc.stdout
    assert 'student + DIST: iteration 4/4' in proc.stdout
    # Each distilled run loaded the teacher trained first.
    teacher = osp.join(work_dir, 'teacher', 'iter_4.pth')
    assert osp.isfile(teacher)
    for run in ('kd', 'dist'):
        with open(osp.join(work_dir, run,
                           f'{run}_deeplabv3_r18_toy.py')) as f:
            assert teacher in f.read()
