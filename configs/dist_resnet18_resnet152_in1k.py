# DIST from ResNet-152 to ResNet-18, a stronger-teacher row of the paper
# (authors 72.24 top-1; KD 71.12): dist_resnet18_in1k.py with mmpretrain's
# ResNet-152 as the teacher.
_base_ = ['./dist_resnet18_in1k.py']

model = dict(**_base_.resnet152_teacher)
