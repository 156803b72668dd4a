# The detection demo's teacher: the student's config (mmdet's stock
# RetinaNet R18 on the toy data) with a ResNet-34 backbone, as mmdet's R18
# config is its R50 one with depth=18; the same anchors, normalisation and
# schedule, trained longer by the demo.
_base_ = ['./retinanet_r18_toy.py']
model = dict(backbone=dict(depth=34))
