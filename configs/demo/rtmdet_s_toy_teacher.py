# The YOLO demo's teacher: the student's config (mmyolo's RTMDet-tiny on
# the toy data) with RTMDet-s's depth and width, as mmyolo's tiny config is
# its s one with smaller factors; the same priors, normalisation and
# schedule, trained longer by the demo.
_base_ = ['./rtmdet_tiny_toy.py']
model = _base_.toy_teacher_model
