import filecmp
import json
import os.path as osp

import cv2
import numpy as np

import pytest

from mmdist.datasets import (CITYSCAPES_SHAPES, COCO_SHAPES, IMAGENET_WNIDS,
                             make_cityscapes, make_coco, make_imagenet)


def test_coco_is_deterministic_and_loads_with_mmdet(tmp_path):
    from mmdet.datasets import CocoDataset
    a = make_coco(str(tmp_path / 'a'), num_train=3, num_val=2, seed=1)
    b = make_coco(str(tmp_path / 'b'), num_train=3, num_val=2, seed=1)
    c = make_coco(str(tmp_path / 'c'), num_train=3, num_val=2, seed=2)
    assert filecmp.cmp(a['train2017'], b['train2017'], shallow=False)
    assert not filecmp.cmp(a['train2017'], c['train2017'], shallow=False)
    with open(a['train2017']) as f:
        ann = json.load(f)
    assert len(ann['categories']) == 80 and len(ann['images']) == 3
    assert {x['category_id'] for x in ann['annotations']} <= {
        cat_id for cat_id, _ in COCO_SHAPES.values()}
    dataset = CocoDataset(
        data_root=str(tmp_path / 'a'),
        ann_file='annotations/instances_train2017.json',
        data_prefix=dict(img='train2017/'), pipeline=[])
    assert len(dataset) == 3
    first = dataset[0]
    image = cv2.imread(first['img_path'])
    assert image.shape == (160, 160, 3)
    for instance in first['instances']:
        x0, y0, x1, y1 = instance['bbox']
        assert 0 <= x0 < x1 <= 160 and 0 <= y0 < y1 <= 160
        name = dataset.metainfo['classes'][instance['bbox_label']]
        assert name in {n for _, n in COCO_SHAPES.values()}


def test_cityscapes_layout_loads_with_mmseg(tmp_path):
    from mmseg.datasets import CityscapesDataset
    root = str(tmp_path / 'cityscapes')
    labels = make_cityscapes(root, num_train=3, num_val=1,
                             image_size=(64, 128), seed=0)
    dataset = CityscapesDataset(
        data_root=root,
        data_prefix=dict(img_path='leftImg8bit/train',
                         seg_map_path='gtFine/train'), pipeline=[])
    assert len(dataset) == 3
    sample = dataset[0]
    assert sample['img_path'].endswith('_leftImg8bit.png')
    assert sample['seg_map_path'].endswith('_gtFine_labelTrainIds.png')
    label = cv2.imread(labels['train'][0], cv2.IMREAD_UNCHANGED)
    assert label.shape == (64, 128) and label.dtype == np.uint8
    values = set(np.unique(label).tolist())
    assert 255 in values and values - {255} <= set(
        CITYSCAPES_SHAPES.values()) | {0, 10}
    assert osp.isfile(labels['val'][0])


def test_imagenet_layout_loads_with_mmpretrain(tmp_path):
    from mmpretrain.datasets import ImageNet
    root = str(tmp_path / 'imagenet')
    written = make_imagenet(root, num_train=3, num_val=2, num_classes=6,
                            image_size=(40, 48), seed=1)
    again = make_imagenet(str(tmp_path / 'again'), num_train=3, num_val=2,
                          num_classes=6, image_size=(40, 48), seed=1)
    assert all(filecmp.cmp(a, b, shallow=False)
               for a, b in zip(written['train'], again['train']))
    classes = IMAGENET_WNIDS[:6]
    for split, per_class in (('train', 3), ('val', 2)):
        # One folder per class, ImageNet's file names, sorted folder order.
        dataset = ImageNet(data_root=root, split=split,
                           metainfo=dict(classes=classes))
        assert len(dataset) == len(written[split]) == 6 * per_class
        labels = [dataset.get_data_info(i)['gt_label']
                  for i in range(len(dataset))]
        assert labels == [k for k in range(6) for _ in range(per_class)]
        info = dataset.get_data_info(per_class)  # the second class's first
        assert osp.basename(osp.dirname(info['img_path'])) == classes[1]
        assert cv2.imread(info['img_path']).shape == (40, 48, 3)
    names = [osp.basename(p) for p in written['val']]
    assert names[0] == 'ILSVRC2012_val_00000001.JPEG'
    assert osp.basename(written['train'][0]) == 'n01440764_0.JPEG'
    with pytest.raises(ValueError, match='1 to 24 classes'):
        make_imagenet(root, num_classes=25)
