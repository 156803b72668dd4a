# Classic KD in DIST's place, as in ../kd_deeplabv3_r18_cityscapes.py.
_base_ = ['./dist_deeplabv3_r18_toy.py']

model = dict(distiller=dict(logits=_base_.seg_kd))
