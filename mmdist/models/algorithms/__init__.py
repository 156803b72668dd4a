from .frozen_teacher_distill import FrozenTeacherDistill, split_loss_terms

__all__ = ['FrozenTeacherDistill', 'split_loss_terms']
