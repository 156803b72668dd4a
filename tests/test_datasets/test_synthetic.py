import filecmp
import json
import os.path as osp

import cv2
import numpy as np

from mmdist.datasets import (CITYSCAPES_SHAPES, COCO_SHAPES, make_cityscapes,
                             make_coco)


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
