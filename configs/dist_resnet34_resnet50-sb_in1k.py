# DIST from ResNet-50-SB (timm's "ResNet strikes back" A1, 80.12) to
# ResNet-34, a strong-recipe row of the paper (authors 77.8 top-1; KD 77.2;
# ResNet-34 alone 76.8): dist_resnet18_resnet50-sb_in1k.py with the student
# of mmpretrain's ResNet-34 config (its ResNet-18 one with depth 34).
_base_ = ['./dist_resnet18_resnet50-sb_in1k.py']

model = dict(architecture=dict(backbone=dict(depth=34)))
