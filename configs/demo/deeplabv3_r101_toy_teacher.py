# The teacher, trained first on the toy data: the architecture of mmseg's
# stock DeepLabV3 R101-D8 config (the real distillation configs' teacher),
# which differs from the R18-D8 student in the backbone depth and the heads'
# widths.
_base_ = ['./deeplabv3_r18_toy.py']
model = dict(
    backbone=dict(depth=101),
    decode_head=dict(in_channels=2048, channels=512),
    auxiliary_head=dict(in_channels=1024, channels=256))
