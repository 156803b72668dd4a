"""Smoke run of benchmarks/bench_settings.py on CPU at 1/10 of the stock
input sizes, on the quickest setting (the full run is for a GPU:
scripts/gpu_check.sh)."""
import importlib.util
import json
import os.path as osp

import pytest

from tests.utils import run_tool

VARIANTS = {'student': 'student alone',
            'mmrazor': 'MMRazor SingleTeacherDistill', 'mmdist': 'mmdist',
            'unfolded': 'mmdist, teacher unfolded',
            'bf16': 'mmdist, teacher bf16',
            'channels_last': 'mmdist, channels last'}


@pytest.mark.slow
def test_bench_settings_runs_on_cpu(tmp_path):
    out = str(tmp_path / 'bench')
    run_tool(['benchmarks/bench_settings.py', '--device', 'cpu', '--scale',
              '0.1', '--repeat', '1', '--warmup', '0', '--settings',
              'resnet18_in1k', '--variants', ','.join(VARIANTS),
              '--teacher-forward', '--out', out])
    with open(osp.join(out, 'results.json')) as f:
        rows = json.load(f)['rows']
    timed = [r for r in rows if 'step_s' in r]
    assert {(r['setting'], r['variant']) for r in timed} == {
        ('resnet18_in1k', v) for v in VARIANTS.values()}
    assert all(r['step_s'] > 0 and r['precision'] == 'fp32' for r in timed)
    for r in timed:  # each step as a ratio of the student's alone
        student = next(s for s in timed if s['setting'] == r['setting']
                       and s['variant'] == 'student alone')
        assert abs(r['vs_student'] - r['step_s'] / student['step_s']) < 1e-9
    forward = [r for r in rows if 'teacher_forward' in r]
    assert [r['teacher_forward'] for r in forward] == [
        'plain', 'folded', 'folded, channels last']
    assert all(r['ms'] > 0 for r in forward)
    drifts = [r['drift'] for r in rows if 'drift' in r]
    assert len(drifts) == 1
    # A bfloat16 teacher moves the distillation losses by well under 1 %.
    assert all(0 <= d['max_rel_diff'] < 1e-2 for d in drifts)
    with open(osp.join(out, 'results.md')) as f:
        table = f.read()
    assert '| resnet18_in1k | mmdist | fp32 |' in table
    assert '| resnet18_in1k | folded |' in table


@pytest.mark.slow
def test_bench_settings_times_rtmdet_beside_mmyolos_kd(tmp_path):
    """RTMDet-m -> RTMDet-s: the student alone, mmyolo's own KD (its
    kd_config) and DIST, on mmyolo's collated batches."""
    out = str(tmp_path / 'bench')
    run_tool(['benchmarks/bench_settings.py', '--device', 'cpu', '--scale',
              '0.1', '--repeat', '1', '--warmup', '0', '--settings',
              'rtmdet_s_m', '--variants', 'student,kd,mmdist', '--out', out])
    with open(osp.join(out, 'results.json')) as f:
        rows = json.load(f)['rows']
    assert [(r['setting'], r['variant'], r['size']) for r in rows] == [
        ('rtmdet_s_m', v, '64x64') for v in (
            'student alone', "mmyolo's KD (CWD on the neck)", 'mmdist')]
    assert all(r['step_s'] > 0 for r in rows)


def _bench_settings():
    path = osp.join(osp.dirname(__file__), '..', '..', 'benchmarks',
                    'bench_settings.py')
    spec = importlib.util.spec_from_file_location('bench_settings', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_teacher_precision_goes_to_each_of_several_teachers():
    options = _bench_settings().mmdist_options
    teachers = dict(x101=dict(cfg_path='a.py', ckpt='a.pth'),
                    r101=dict(cfg_path='b.py', ckpt='b.pth'))
    got = options(dict(teacher_precision='bfloat16'),
                  dict(teachers=teachers))
    assert got == dict(teachers={
        name: dict(spec, precision='bfloat16')
        for name, spec in teachers.items()})
    assert 'precision' not in teachers['x101']  # the caller's dict is kept
    assert options(dict(teacher_precision='bfloat16'),
                   dict(teacher_ckpt='t.pth')) == dict(
                       teacher_ckpt='t.pth', teacher_precision='bfloat16')
    assert options(dict(channels_last=True), dict(teachers=teachers)) == \
        dict(channels_last=True, teachers=teachers)
