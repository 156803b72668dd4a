# Classic KD in DIST's place, for side-by-side runs (see
# _base_/cityscapes_distill.py).
_base_ = ['./dist_pspnet_r18_cityscapes.py']

model = dict(distiller=dict(logits=_base_.seg_kd))
