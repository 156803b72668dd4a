# DIST plus the FPN mimic term of _base_/fpn_mimic.py.
_base_ = ['./dist_faster_rcnn_r50_coco.py', './_base_/fpn_mimic.py']

model = dict(distiller=_base_.mimic_distiller)
