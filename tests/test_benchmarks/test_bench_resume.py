"""Smoke run of benchmarks/bench_resume.py at iteration 10, loading in the
main process (the docs' figures are at 20,000, with 2 workers): both
resumes get to a trained iteration, each the way it says (the benchmark
checks their logs), and it prints its table."""
import pytest

from tests.utils import run_tool


@pytest.mark.slow
def test_bench_resume_runs(tmp_path):
    proc = run_tool(['benchmarks/bench_resume.py', '--iters', '10',
                     '--workers', '0', '--work-dir', str(tmp_path)])
    out = proc.stdout
    assert 'resume at iteration 10 of the Cityscapes-layout DIST config' in out
    for row in ('| fresh run (no resume), for comparison |',
                "| --resume, MMEngine's replay (resume_mode=replay) |",
                "| --resume, mmdist's sampler skip (default) |"):
        line = next(line for line in out.splitlines() if line.startswith(row))
        assert float(line.split('|')[2]) > 0
    assert 'us in a worker' in out
