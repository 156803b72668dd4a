# Classic KD in DIST's place, as in ../kd_resnet18_in1k.py.
_base_ = ['./dist_resnet18_toy.py']

model = dict(
    architecture=dict(head=dict(loss=dict(loss_weight=0.9))),
    distiller=dict(logits=_base_.cls_kd))
