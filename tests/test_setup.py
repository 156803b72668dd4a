"""Installing mmdist as users do: setup.py is a shim whose metadata comes
from pyproject.toml; a built wheel carries the configs, and a user's config
outside the checkout inherits them as ``mmdist::...``, through mmdist's
tools and mmdet's own; ``pip install -v -e .`` without mmcv leaves an
mmdist that says the one command to run."""
import glob
import os.path as osp
import subprocess
import sys

import pytest

from tests.utils import (MMDIST_INSTALLED, REPO, coco_options,
                         copy_checkout, fresh_venv, mim_path, tool_env)


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


USER_CONFIG = """_base_ = ['mmdist::dist_retinanet_r50_coco.py']
model = dict(teacher_ckpt='{teacher}',
             architecture=dict(backbone=dict(init_cfg=None)))
"""


@pytest.fixture(scope='module')
def installed_wheel(module_tmp):
    """mmdist built as a wheel and installed (``pip install``, not
    editable) into a fresh environment that has its dependencies."""
    tmp = module_tmp('wheel')
    source = copy_checkout(str(tmp / 'src'))
    subprocess.run([sys.executable, '-m', 'pip', 'wheel', '--no-deps',
                    '--no-build-isolation', '-q', '-w', str(tmp), source],
                   check=True, capture_output=True)
    wheel, = glob.glob(str(tmp / 'mmdist-*.whl'))
    python = fresh_venv(str(tmp / 'venv'))
    subprocess.run([python, '-m', 'pip', 'install', '-q', '--no-deps',
                    '--no-index', wheel], check=True, capture_output=True)
    return tmp, python


def run_in(python, args, cwd):
    result = subprocess.run([python, *args], cwd=cwd, capture_output=True,
                            text=True, env=tool_env())
    assert result.returncode == 0, result.stderr[-4000:]
    return result


@pytest.mark.slow
def test_a_user_config_inherits_the_installed_configs(
        installed_wheel, coco_root, retinanet_teacher_ckpt):
    tmp, python = installed_wheel
    user = tmp / 'user'
    user.mkdir()
    # The installed mmdist, its configs and hook, not the checkout's.
    where = run_in(python, ['-c', 'import mmdist, _mmdist_mmcv_ext; '
                            'print(mmdist.__file__, _mmdist_mmcv_ext.'
                            '__file__)'], user).stdout.split()
    assert all(p.startswith(str(tmp / 'venv')) for p in where), where
    config = user / 'my_dist.py'
    config.write_text(USER_CONFIG.format(teacher=retinanet_teacher_ckpt))
    options = ['--cfg-options', *coco_options(coco_root)]
    for tool, work_dir in (
            (f'{REPO}/tools/train.py', user / 'ours'),
            # mmdet's own tool: the config's custom_imports bring mmdist.
            (mim_path('mmdet', 'tools', 'train.py'), user / 'mmdets')):
        run_in(python, [tool, str(config), '--work-dir', str(work_dir),
                        *options], user)
        assert osp.isfile(work_dir / 'epoch_1.pth'), tool
        log, = glob.glob(str(work_dir / '*' / '*.log'))
        with open(log) as f:
            text = f.read()
        assert 'FrozenTeacherDistill' in text or 'loss_cls' in text
        assert 'distill.loss_cls' in text


def test_editable_install_without_mmcv_names_the_fix(module_tmp):
    # OpenMMLab's guides: `pip install -v -e .` in an environment with
    # torch (and, here, the other dependencies) but no mmcv. mmcv is no
    # dependency of mmdist's (a compiled one must stay): nothing installs
    # it, and mmdist says what to run.
    tmp = module_tmp('editable')
    source = copy_checkout(str(tmp / 'src'))
    python = fresh_venv(str(tmp / 'venv'),
                        leave_out=MMDIST_INSTALLED + ('mmcv', ))
    install = subprocess.run(
        [python, '-m', 'pip', 'install', '-v', '--no-build-isolation',
         '--no-index', '-e', '.'], cwd=source, capture_output=True,
        text=True)
    assert install.returncode == 0, install.stdout[-3000:] + install.stderr
    assert not glob.glob(str(tmp / 'venv' / 'lib' / '*' / 'site-packages' /
                             'mmcv*'))
    fix = 'pip install mmcv-lite==2.1.0'
    for args in (['-c', 'import mmdist'],
                 ['tools/train.py', 'configs/dist_retinanet_r50_coco.py']):
        result = subprocess.run([python, *args], cwd=source,
                                capture_output=True, text=True)
        assert result.returncode != 0
        last = result.stderr.strip().splitlines()[-1]
        assert last.startswith("ModuleNotFoundError: No module named 'mmcv'")
        assert last.endswith(fix), last
