from .resumable import (PositionSeededDataset, ResumableInfiniteSampler,
                        SeededDefaultSampler, SeededIndex, sample_seed,
                        seeded)
from .synthetic import (CITYSCAPES_SHAPES, COCO_SHAPES, IMAGENET_WNIDS,
                        SHAPE_CLASSES, make_cityscapes, make_coco,
                        make_imagenet, synthetic_image)

__all__ = [
    'CITYSCAPES_SHAPES', 'COCO_SHAPES', 'IMAGENET_WNIDS', 'SHAPE_CLASSES',
    'PositionSeededDataset', 'ResumableInfiniteSampler',
    'SeededDefaultSampler', 'SeededIndex', 'make_cityscapes', 'make_coco',
    'make_imagenet', 'sample_seed', 'seeded', 'synthetic_image'
]
