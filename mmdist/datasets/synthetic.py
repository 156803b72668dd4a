"""Small synthetic data sets in the real COCO, Cityscapes and ImageNet
layouts.

Coloured geometric shapes on textured backgrounds, deterministic from a
seed. They serve the tests and the embedded demos: the real mmdet, mmseg
and mmpretrain datasets, pipelines and metrics read them as they read COCO,
Cityscapes and ImageNet.
"""
import json
import os
import os.path as osp
from typing import Dict, List, Sequence, Tuple

import cv2
import numpy as np

# Cityscapes train ids: the background is road below a horizon and sky
# above it; each shape is one class; a band at the bottom (the ego
# vehicle's bonnet in real Cityscapes) is 255, ignored.
CITYSCAPES_ROAD, CITYSCAPES_SKY, CITYSCAPES_IGNORE = 0, 10, 255
CITYSCAPES_SHAPES: Dict[str, int] = {
    'circle': 7,  # traffic sign
    'square': 13,  # car
    'triangle': 11,  # person
}
# A base colour (BGR) per kind, jittered per shape, so that a small network
# can learn the toy task in a few hundred iterations from scratch.
CITYSCAPES_COLOURS = {
    'circle': (40, 60, 220),
    'square': (220, 80, 40),
    'triangle': (50, 200, 60),
}

# Each shape is drawn as one COCO category (its real name and id).
COCO_SHAPES: Dict[str, Tuple[int, str]] = {
    'circle': (37, 'sports ball'),
    'square': (62, 'tv'),
    'triangle': (38, 'kite'),
}

# The classes of a data set of one's own (make_coco(shape_classes=True)).
SHAPE_CLASSES = ('circle', 'square', 'triangle')


def _coco_categories() -> List[dict]:
    from mmdet.datasets import CocoDataset
    # The real COCO category ids: 1-90 with gaps.
    ids = [
        1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 14, 15, 16, 17, 18, 19, 20, 21,
        22, 23, 24, 25, 27, 28, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40, 41,
        42, 43, 44, 46, 47, 48, 49, 50, 51, 52, 53, 54, 55, 56, 57, 58, 59,
        60, 61, 62, 63, 64, 65, 67, 70, 72, 73, 74, 75, 76, 77, 78, 79, 80,
        81, 82, 84, 85, 86, 87, 88, 89, 90
    ]
    names = CocoDataset.METAINFO['classes']
    return [dict(id=i, name=n, supercategory='shape')
            for i, n in zip(ids, names)]


def _background(rng: np.random.RandomState, height: int,
                width: int) -> np.ndarray:
    """A smooth colour gradient with noise and stripes."""
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    base = rng.uniform(40, 200, size=3)
    slope = rng.uniform(-0.4, 0.4, size=(2, 3))
    image = base + xs[..., None] * slope[0] + ys[..., None] * slope[1]
    period = rng.uniform(6, 20)
    image += 12 * np.sin(xs / period)[..., None]
    image += rng.normal(0, 10, size=image.shape)
    return np.clip(image, 0, 255).astype(np.uint8)


def _shape_polygon(kind: str, cx: float, cy: float,
                   r: float) -> np.ndarray:
    if kind == 'circle':
        angles = np.linspace(0, 2 * np.pi, 24, endpoint=False)
    elif kind == 'square':
        angles = np.array([0.25, 0.75, 1.25, 1.75]) * np.pi
    else:
        angles = np.array([-0.5, 1 / 6, 5 / 6]) * np.pi
    return np.stack([cx + r * np.cos(angles), cy + r * np.sin(angles)], 1)


def _draw_shapes(rng: np.random.RandomState,
                 image: np.ndarray,
                 kinds: Sequence[str],
                 count: int,
                 label_map: np.ndarray = None,
                 labels: Dict[str, int] = None,
                 colours: Dict[str, Tuple[int, int, int]] = None,
                 radius: Tuple[float, float] = (0.08, 0.2)
                 ) -> List[dict]:
    """Draw ``count`` shapes in place; return their kinds and polygons.

    With ``label_map``, each shape is also painted there with
    ``labels[kind]``. With ``colours``, a shape's colour is its kind's,
    jittered; otherwise any colour. A shape's radius is drawn from
    ``radius`` times the image's shorter side.
    """
    height, width = image.shape[:2]
    shapes = []
    for _ in range(count):
        kind = kinds[rng.randint(len(kinds))]
        r = rng.uniform(*radius) * min(height, width)
        cx = rng.uniform(r, width - r)
        cy = rng.uniform(r, height - r)
        poly = _shape_polygon(kind, cx, cy, r)
        if colours is None:
            colour = tuple(int(c) for c in rng.randint(0, 256, size=3))
        else:
            jitter = rng.randint(-40, 41, size=3)
            colour = tuple(
                int(c) for c in np.clip(np.add(colours[kind], jitter), 0, 255))
        pts = np.round(poly).astype(np.int32)
        cv2.fillPoly(image, [pts], colour)
        if label_map is not None:
            cv2.fillPoly(label_map, [pts], labels[kind])
        shapes.append(dict(kind=kind, polygon=poly))
    return shapes


def synthetic_image(height: int, width: int, seed: int = 0,
                    max_shapes: int = 3) -> np.ndarray:
    """One image (BGR, uint8) as the data sets here draw them: 1 to
    ``max_shapes`` coloured shapes on a textured background."""
    rng = np.random.RandomState(seed)
    image = _background(rng, height, width)
    _draw_shapes(rng, image, list(COCO_SHAPES), rng.randint(1, max_shapes + 1))
    return image


def make_coco(root: str,
              num_train: int = 8,
              num_val: int = 4,
              image_size: Tuple[int, int] = (160, 160),
              max_shapes: int = 3,
              seed: int = 0,
              shape_classes: bool = False,
              radius: Tuple[float, float] = (0.08, 0.2)) -> Dict[str, str]:
    """Write a COCO-layout detection data set under ``root``.

    ``root/annotations/instances_{train,val}2017.json`` and
    ``root/{train,val}2017/*.jpg``, with all 80 COCO categories declared and
    the shapes labelled as ``COCO_SHAPES``; or, with ``shape_classes``, a
    data set of one's own: three categories named after the shapes
    (``SHAPE_CLASSES``, ids 1-3).

    Args:
        root: The data root (for example ``data/coco``).
        num_train: Training images.
        num_val: Validation images.
        image_size: (height, width) of every image.
        max_shapes: Each image holds 1 to ``max_shapes`` shapes.
        seed: Everything drawn follows from it.
        shape_classes: Declare the three shape classes instead of COCO's.
        radius: The range of a shape's radius (the distance from its centre
            to its corners), as a fraction of the image's shorter side.

    Returns:
        The annotation file of each split.
    """
    rng = np.random.RandomState(seed)
    height, width = image_size
    if shape_classes:
        categories = [dict(id=i + 1, name=name, supercategory='shape')
                      for i, name in enumerate(SHAPE_CLASSES)]
        category_of = {name: i + 1 for i, name in enumerate(SHAPE_CLASSES)}
    else:
        categories = _coco_categories()
        category_of = {kind: cat for kind, (cat, _) in COCO_SHAPES.items()}
    kinds = list(COCO_SHAPES)
    ann_files = {}
    os.makedirs(osp.join(root, 'annotations'), exist_ok=True)
    ann_id = 1
    for split, count in (('train2017', num_train), ('val2017', num_val)):
        os.makedirs(osp.join(root, split), exist_ok=True)
        images, annotations = [], []
        for index in range(count):
            image_id = index + 1
            file_name = f'{image_id:012d}.jpg'
            image = _background(rng, height, width)
            shapes = _draw_shapes(rng, image, kinds,
                                  rng.randint(1, max_shapes + 1),
                                  radius=radius)
            cv2.imwrite(osp.join(root, split, file_name), image)
            images.append(dict(id=image_id, file_name=file_name,
                               height=height, width=width))
            for shape in shapes:
                poly = np.clip(shape['polygon'], 0, [width - 1, height - 1])
                x0, y0 = poly.min(0)
                x1, y1 = poly.max(0)
                annotations.append(dict(
                    id=ann_id, image_id=image_id,
                    category_id=category_of[shape['kind']],
                    bbox=[float(x0), float(y0), float(x1 - x0),
                          float(y1 - y0)],
                    area=float(cv2.contourArea(poly.astype(np.float32))),
                    segmentation=[poly.reshape(-1).round(2).tolist()],
                    iscrowd=0))
                ann_id += 1
        ann_file = osp.join(root, 'annotations', f'instances_{split}.json')
        with open(ann_file, 'w') as f:
            json.dump(dict(images=images, annotations=annotations,
                           categories=categories), f)
        ann_files[split] = ann_file
    return ann_files


def make_cityscapes(root: str,
                    num_train: int = 4,
                    num_val: int = 2,
                    image_size: Tuple[int, int] = (128, 256),
                    max_shapes: int = 4,
                    seed: int = 0,
                    city: str = 'synthcity') -> Dict[str, List[str]]:
    """Write a Cityscapes-layout segmentation data set under ``root``.

    ``leftImg8bit/{train,val}/<city>/<city>_000000_<i>_leftImg8bit.png`` and
    ``gtFine/{train,val}/<city>/<city>_000000_<i>_gtFine_labelTrainIds.png``
    with the 19 train ids of Cityscapes (see ``CITYSCAPES_SHAPES``) and 255
    for ignored pixels.

    Args:
        root: The data root (for example ``data/cityscapes``).
        num_train: Training images.
        num_val: Validation images.
        image_size: (height, width) of every image.
        max_shapes: Each image holds 1 to ``max_shapes`` shapes.
        seed: Everything drawn follows from it.
        city: The one city folder.

    Returns:
        The label files of each split.
    """
    rng = np.random.RandomState(seed)
    height, width = image_size
    kinds = list(CITYSCAPES_SHAPES)
    written: Dict[str, List[str]] = {}
    for split, count in (('train', num_train), ('val', num_val)):
        img_dir = osp.join(root, 'leftImg8bit', split, city)
        ann_dir = osp.join(root, 'gtFine', split, city)
        os.makedirs(img_dir, exist_ok=True)
        os.makedirs(ann_dir, exist_ok=True)
        written[split] = []
        for index in range(count):
            stem = f'{city}_000000_{index:06d}'
            image = _background(rng, height, width)
            labels = np.full((height, width), CITYSCAPES_ROAD, np.uint8)
            horizon = int(rng.uniform(0.3, 0.5) * height)
            labels[:horizon] = CITYSCAPES_SKY
            image[:horizon] = np.clip(
                image[:horizon].astype(np.int16) + 40, 0, 255)
            _draw_shapes(rng, image, kinds, rng.randint(1, max_shapes + 1),
                         labels, CITYSCAPES_SHAPES, CITYSCAPES_COLOURS)
            labels[-max(1, height // 10):] = CITYSCAPES_IGNORE
            cv2.imwrite(osp.join(img_dir, f'{stem}_leftImg8bit.png'), image)
            label_file = osp.join(ann_dir, f'{stem}_gtFine_labelTrainIds.png')
            cv2.imwrite(label_file, labels)
            written[split].append(label_file)
    return written


# ImageNet's first synsets, sorted by WordNet id as ImageNet's class
# folders are (tench, goldfish, ..., bald eagle, vulture).
IMAGENET_WNIDS = (
    'n01440764', 'n01443537', 'n01484850', 'n01491361', 'n01494475',
    'n01496331', 'n01498041', 'n01514668', 'n01514859', 'n01518878',
    'n01530575', 'n01531178', 'n01532829', 'n01534433', 'n01537544',
    'n01558993', 'n01560419', 'n01580077', 'n01582220', 'n01592084',
    'n01601694', 'n01608432', 'n01614925', 'n01616318')
# Each generated class is one shape in one hue: 8 hues around the colour
# wheel (OpenCV's 0-180 scale), so that classes of neighbouring hues or of
# one shape look alike and a teacher's scores for the wrong classes carry
# something for a student to learn.
IMAGENET_HUES = 8


def _class_colour(rng: np.random.RandomState, label: int) -> tuple:
    """A BGR colour of class ``label``'s hue, jittered."""
    hue = (label // len(SHAPE_CLASSES)) * 180 / IMAGENET_HUES
    hsv = np.array([[[(hue + rng.uniform(-7, 7)) % 180,
                      rng.uniform(150, 255), rng.uniform(130, 255)]]],
                   np.float32)
    bgr = cv2.cvtColor(hsv.astype(np.uint8), cv2.COLOR_HSV2BGR)[0, 0]
    return tuple(int(c) for c in bgr)


def make_imagenet(root: str,
                  num_train: int = 4,
                  num_val: int = 2,
                  image_size: Tuple[int, int] = (64, 64),
                  num_classes: int = 24,
                  seed: int = 0) -> Dict[str, List[str]]:
    """Write an ImageNet-layout classification data set under ``root``.

    ``train/<wnid>/<wnid>_<i>.JPEG`` and
    ``val/<wnid>/ILSVRC2012_val_<n>.JPEG``: one folder per class, as
    mmpretrain's ``ImageNet`` reads ImageNet without ``meta/`` lists. Class
    ``k`` is shape ``k % 3`` in hue ``k // 3`` of 8, jittered, on a
    textured background among smaller shapes of any kind and colour.
    mmpretrain reads a data set of fewer classes than ImageNet's 1000 given
    ``metainfo=dict(classes=IMAGENET_WNIDS[:num_classes])`` (the folders in
    sorted order) and the model's ``num_classes``.

    Args:
        root: The data root (for example ``data/imagenet``).
        num_train: Training images per class.
        num_val: Validation images per class.
        image_size: (height, width) of every image.
        num_classes: Classes, 1 to 24.
        seed: Everything drawn follows from it.

    Returns:
        The image files of each split.
    """
    if not 1 <= num_classes <= len(IMAGENET_WNIDS):
        raise ValueError(f'num_classes={num_classes}: make_imagenet draws '
                         f'1 to {len(IMAGENET_WNIDS)} classes')
    rng = np.random.RandomState(seed)
    height, width = image_size
    kinds = list(SHAPE_CLASSES)
    written: Dict[str, List[str]] = {}
    val_index = 0
    for split, count in (('train', num_train), ('val', num_val)):
        written[split] = []
        for label, wnid in enumerate(IMAGENET_WNIDS[:num_classes]):
            folder = osp.join(root, split, wnid)
            os.makedirs(folder, exist_ok=True)
            kind = kinds[label % len(kinds)]
            for index in range(count):
                image = _background(rng, height, width)
                _draw_shapes(rng, image, kinds, rng.randint(0, 3))
                r = rng.uniform(0.25, 0.42) * min(height, width)
                cx = rng.uniform(r, width - r)
                cy = rng.uniform(r, height - r)
                pts = np.round(_shape_polygon(kind, cx, cy, r)).astype(
                    np.int32)
                cv2.fillPoly(image, [pts], _class_colour(rng, label))
                if split == 'train':
                    name = f'{wnid}_{index}.JPEG'
                else:
                    val_index += 1
                    name = f'ILSVRC2012_val_{val_index:08d}.JPEG'
                path = osp.join(folder, name)
                cv2.imwrite(path, image)
                written[split].append(path)
    return written
