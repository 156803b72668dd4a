"""Shared fixtures: generated data sets."""
import pytest


@pytest.fixture(scope='session')
def coco_root(tmp_path_factory) -> str:
    from mmdist.datasets import make_coco
    root = str(tmp_path_factory.mktemp('data') / 'coco')
    make_coco(root, num_train=4, num_val=2, image_size=(128, 128), seed=0)
    return root
