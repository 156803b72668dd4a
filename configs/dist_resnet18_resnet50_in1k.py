# DIST from ResNet-50 to ResNet-18, a stronger-teacher row of the paper
# (authors 72.12 top-1; KD 71.35): dist_resnet18_in1k.py with mmpretrain's
# ResNet-50 as the teacher.
_base_ = ['./dist_resnet18_in1k.py']

model = dict(**_base_.resnet50_teacher)
