# DIST from ResNet-152 to ResNet-34, a stronger-teacher row of the paper
# (authors 75.42 top-1; KD 74.87): dist_resnet34_resnet50_in1k.py with
# mmpretrain's ResNet-152 as the teacher.
_base_ = ['./dist_resnet34_resnet50_in1k.py']

model = dict(**_base_.resnet152_teacher)
