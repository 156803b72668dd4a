from .synthetic import (CITYSCAPES_SHAPES, COCO_SHAPES, SHAPE_CLASSES,
                        make_cityscapes, make_coco)

__all__ = [
    'CITYSCAPES_SHAPES', 'COCO_SHAPES', 'SHAPE_CLASSES', 'make_cityscapes',
    'make_coco'
]
