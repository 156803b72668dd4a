# DIST from ResNet-101 to ResNet-18, a stronger-teacher row of the paper
# (authors 72.08 top-1; KD 71.09): dist_resnet18_in1k.py with mmpretrain's
# ResNet-101 as the teacher.
_base_ = ['./dist_resnet18_in1k.py']

model = dict(**_base_.resnet101_teacher)
