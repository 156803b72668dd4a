# DIST from ResNet-101 to ResNet-34, a stronger-teacher row of the paper
# (authors 75.36 top-1; KD 74.89): dist_resnet34_resnet50_in1k.py with
# mmpretrain's ResNet-101 as the teacher.
_base_ = ['./dist_resnet34_resnet50_in1k.py']

model = dict(**_base_.resnet101_teacher)
