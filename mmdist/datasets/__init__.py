from .synthetic import COCO_SHAPES, make_coco

__all__ = ['COCO_SHAPES', 'make_coco']
