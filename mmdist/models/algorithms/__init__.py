from .frozen_teacher_distill import FrozenTeacherDistill, split_loss_terms
from .roi_teacher_distill import RoITeacherDistill, roi_stage

__all__ = [
    'FrozenTeacherDistill', 'RoITeacherDistill', 'roi_stage',
    'split_loss_terms'
]
