# The teacher, trained first on the toy data: the architecture of
# mmpretrain's stock ResNet-34 config (the baseline row's teacher).
_base_ = ['./resnet18_toy.py']
model = dict(backbone=dict(depth=34))
