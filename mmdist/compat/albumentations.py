"""mmdet's ``Albu`` transform on albumentations 2: its draws follow the
seeds that MMEngine (``randomness.seed``) and mmdist (a seed per sample)
set, as they did with albumentations 1."""
import functools

import numpy as np


def draws_from_its_own_generator() -> bool:
    """Whether the installed albumentations (2 and later) draws from
    generators of its own, seeded from the OS, instead of numpy's and
    Python's global ones."""
    try:
        import albumentations
    except ImportError:
        return False
    major = int(albumentations.__version__.split('.')[0])
    return major >= 2 and hasattr(albumentations.Compose, 'set_random_seed')


def seed_albu_from_numpy() -> bool:
    """Seed the albumentations pipeline of mmdet's ``Albu`` (YOLOv5's and
    YOLOv8's Blur, MedianBlur, ToGray, CLAHE) from numpy's global generator
    before each image, where albumentations would otherwise draw from its
    own: runs with the same seed augment alike, and a run resumed by mmdist
    augments each image as the uninterrupted one did. Returns whether the
    transform was patched (once)."""
    if not draws_from_its_own_generator():
        return False
    from mmdet.datasets.transforms.transforms import Albu
    original = Albu.transform
    if getattr(original, '_mmdist_seeded', False):
        return False

    @functools.wraps(original)
    def transform(self, results: dict) -> dict:
        self.aug.set_random_seed(int(np.random.randint(2**31)))
        return original(self, results)

    transform._mmdist_seeded = True
    transform.stock = original
    Albu.transform = transform
    return True
