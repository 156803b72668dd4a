"""Shared fixtures (generated data sets, a module's scratch folder, the
RetinaNet teacher) and the ``gpu`` marker."""
import gc
import os
import shutil
import tempfile

import pytest
import torch

if os.environ.get('PYTEST_XDIST_WORKER'):
    # The workers share the cores: a thread each, not one each per core.
    torch.set_num_threads(1)

# Peak disk use of pytest's temporary folder over the whole suite, measured
# (the end-to-end tests write checkpoints of a few hundred MB).
SUITE_DISK_GB = 3


# Where the suite's temporary folders go unless TMPDIR or --basetemp says:
# a memory file system, where it has room, writes the tests' checkpoints
# five times as fast as a disk (300 MB: 0.25 s against 1.5 s).
MEMORY_FS = '/dev/shm'


def pytest_configure(config):
    """Put pytest's temporary folder on :data:`MEMORY_FS` where it has
    twice the room the suite needs (the controller chooses; xdist's workers
    get folders under its)."""
    if (config.option.basetemp is not None or 'TMPDIR' in os.environ
            or hasattr(config, 'workerinput')
            or not os.access(MEMORY_FS, os.W_OK)
            or shutil.disk_usage(MEMORY_FS).free < 2 * SUITE_DISK_GB * 2**30):
        return
    config.option.basetemp = tempfile.mkdtemp(prefix='mmdist-pytest-',
                                              dir=MEMORY_FS)
    config._mmdist_memory_basetemp = config.option.basetemp


def pytest_unconfigure(config):
    """A folder in memory holds memory until it is removed."""
    path = getattr(config, '_mmdist_memory_basetemp', None)
    if path:
        shutil.rmtree(path, ignore_errors=True)


def pytest_report_header(config):
    """Say where the temporary folders go and how much room is there: a
    full disk shows up as an odd torch.save error (unexpected pos)."""
    folder = getattr(config, '_mmdist_memory_basetemp', None) or \
        tempfile.gettempdir()
    free = shutil.disk_usage(folder).free / 2**30
    line = (f'temporary folder {folder}: {free:.1f} GB free, '
            f'the suite needs about {SUITE_DISK_GB} GB')
    if getattr(config, '_mmdist_memory_basetemp', None):
        line += ' (in memory, removed at the end; set TMPDIR to keep them)'
    elif free < SUITE_DISK_GB:
        line += ' -- free some, or point TMPDIR at a larger disk'
    return line


@pytest.fixture(scope='module', autouse=True)
def _imports_out_of_the_collector():
    """Freeze what is alive as a module starts (imported packages, session
    fixtures) out of the cyclic garbage collector: a full collection over
    the task packages' objects took ~0.6 s, and the tools that run in this
    process (and MMEngine's dataset builds, and the collector itself) ran
    about 350 of them, 185 s of the suite. Later garbage is collected as
    before."""
    gc.collect()
    gc.freeze()
    yield


def pytest_collection_modifyitems(config, items):
    """Refuse parameter ids with '::' (pytest-xdist's --dist loadscope
    takes what comes before a test id's last '::' for its module: such a
    test would leave its module, and the module's fixtures run again for
    it). Skip GPU tests (``-m gpu``) where torch sees no CUDA device."""
    for item in items:
        if '::' in item.nodeid.partition('[')[2]:
            raise pytest.UsageError(
                f"{item.nodeid}: a parameter id with '::'; give the "
                "parametrisation ids without it")
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason='needs a CUDA GPU (scripts/gpu_check.sh)')
    for item in items:
        if 'gpu' in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope='session')
def coco_root(tmp_path_factory) -> str:
    from mmdist.datasets import make_coco
    root = str(tmp_path_factory.mktemp('data') / 'coco')
    make_coco(root, num_train=4, num_val=2, image_size=(128, 128), seed=0)
    return root


@pytest.fixture(scope='session')
def cityscapes_root(tmp_path_factory) -> str:
    from mmdist.datasets import make_cityscapes
    root = str(tmp_path_factory.mktemp('data') / 'cityscapes')
    make_cityscapes(root, num_train=4, num_val=2, image_size=(128, 256))
    return root


@pytest.fixture(scope='module')
def module_tmp(tmp_path_factory):
    """``make(name)``: a new folder that lives as long as the test module.

    A module's checkpoints (hundreds of MB each) go when its last test is
    done, so the suite needs the disk of one module at a time, not of all
    of them.
    """
    made = []

    def make(name: str):
        made.append(tmp_path_factory.mktemp(name))
        return made[-1]

    yield make
    for path in made:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope='session')
def retinanet_teacher_ckpt(tmp_path_factory) -> str:
    """Weights of a randomly initialised X101-64x4d RetinaNet, the teacher
    of configs/dist_retinanet_r50_coco.py (one file for the session)."""
    from tests.utils import save_random_model
    return save_random_model(
        'mmdet::retinanet/retinanet_x101-64x4d_fpn_1x_coco.py',
        str(tmp_path_factory.mktemp('teacher') / 'retinanet_x101.pth'))
