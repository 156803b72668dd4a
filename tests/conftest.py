"""Shared fixtures (generated data sets) and the ``gpu`` marker."""
import pytest
import torch


def pytest_collection_modifyitems(config, items):
    """Skip GPU tests (``-m gpu``) where torch sees no CUDA device."""
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
