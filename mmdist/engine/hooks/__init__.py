from .checkpoint_hook import AtomicCheckpointHook
from .random_state_hook import RandomStateHook
from .teacher_eval_hook import TeacherEvalHook, evaluate_teacher

__all__ = [
    'AtomicCheckpointHook', 'RandomStateHook', 'TeacherEvalHook',
    'evaluate_teacher'
]
