# DIST on RetinaNet with one row per anchor (80 classes) instead of one row
# per position (9 anchors x 80 classes, the authors' layout).
_base_ = ['./dist_retinanet_r50_coco.py']

model = dict(distiller=dict(logits=dict(cls=dict(loss=dict(num_classes=80)))))
