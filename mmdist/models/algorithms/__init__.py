from .distill_checks import split_loss_terms
from .frozen_teacher_distill import FrozenTeacherDistill
from .roi_teacher_distill import RoITeacherDistill, roi_stage
from .seg_teacher_distill import SegTeacherDistill
from .teacher_utils import teacher_config

__all__ = [
    'FrozenTeacherDistill', 'RoITeacherDistill', 'SegTeacherDistill',
    'roi_stage', 'split_loss_terms', 'teacher_config'
]
