# Classic KD (tau = 4) from ResNet-34 to ResNet-18, the paper's KD baseline
# (authors 71.21 top-1): 0.9 x CE + 1.0 x KD, recipe and teacher of
# dist_resnet18_in1k.py.
_base_ = ['./dist_resnet18_in1k.py']

model = dict(
    architecture=dict(head=dict(loss=dict(loss_weight=0.9))),
    distiller=dict(logits=_base_.cls_kd))
