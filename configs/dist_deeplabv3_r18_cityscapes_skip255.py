# configs/dist_deeplabv3_r18_cityscapes.py with the pixels labelled 255 left
# out of both DIST losses (an option, not the authors' method): the one line
# below works in any config that inherits a Cityscapes DIST or KD config.
_base_ = ['./dist_deeplabv3_r18_cityscapes.py']

model = dict(distiller=_base_.seg_leave_out_ignored)
