"""mmdist.compat.albumentations: mmdet's Albu augments alike under the same
numpy seed on albumentations 2, as on albumentations 1."""
import numpy as np
import pytest

import mmdist  # noqa: F401  applies the fixes
from mmdist.compat.albumentations import draws_from_its_own_generator

pytestmark = pytest.mark.skipif(
    not draws_from_its_own_generator(),
    reason='this albumentations draws from the global generators')


def augment(transform, seed):
    np.random.seed(seed)
    image = (np.arange(48 * 48 * 3) % 251).reshape(48, 48, 3).astype(
        np.uint8)
    return transform(dict(img=image, img_shape=(48, 48)))['img']


def albu():
    from mmdet.datasets.transforms import Albu
    return Albu(transforms=[dict(type='RandomBrightnessContrast', p=0.5),
                            dict(type='Blur', p=0.5)])


def test_the_same_seed_augments_alike():
    first = [augment(albu(), seed) for seed in range(6)]
    again = [augment(albu(), seed) for seed in range(6)]
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a, b)
    # ... and the seeds do make a difference.
    assert any(not np.array_equal(first[0], other) for other in first[1:])


def test_albumentations_alone_does_not():
    from mmdet.datasets.transforms import Albu
    stock = Albu.transform.stock

    def run():
        transform = albu()
        np.random.seed(0)
        image = np.full((48, 48, 3), 100, np.uint8)
        return [stock(transform, dict(img=image.copy(),
                                      img_shape=(48, 48)))['img'].mean()
                for _ in range(8)]
    assert run() != run()
