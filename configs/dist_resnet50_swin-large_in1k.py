# DIST from Swin-L (ImageNet-21k pre-trained, 224 px, 86.24) to ResNet-50,
# a strong-recipe row of the paper (authors 80.2 top-1; KD 80.0; ResNet-50
# alone 78.5): dist_resnet18_resnet50-sb_in1k.py (the authors' strong
# recipe) with the student of mmpretrain's ResNet-50 config (its ResNet-18
# one with depth 50 and a 2048-channel head) and Swin-L as the teacher,
# which reads the student's 224 px crops, normalised alike.
_base_ = ['./dist_resnet18_resnet50-sb_in1k.py']

model = dict(
    architecture=dict(backbone=dict(depth=50), head=dict(in_channels=2048)),
    **_base_.swin_large_teacher)
