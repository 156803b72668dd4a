"""setup.py is a shim: the metadata comes from pyproject.toml alone."""
import subprocess
import sys

from tests.utils import REPO


def test_setup_py_reads_pyproject_metadata():
    import tomllib
    with open(f'{REPO}/pyproject.toml', 'rb') as f:
        project = tomllib.load(f)['project']
    out = subprocess.run(
        [sys.executable, 'setup.py', '--name', '--version'], cwd=REPO,
        capture_output=True, text=True, check=True).stdout.split()
    assert out[-2:] == [project['name'], project['version']]
    with open(f'{REPO}/setup.py') as f:
        assert project['version'] not in f.read()
