from .checkpoint_hook import AtomicCheckpointHook
from .mix_cache_hook import MixCacheReplayHook
from .random_state_hook import RandomStateHook
from .teacher_eval_hook import TeacherEvalHook, evaluate_teacher

__all__ = [
    'AtomicCheckpointHook', 'MixCacheReplayHook', 'RandomStateHook',
    'TeacherEvalHook',
    'evaluate_teacher'
]
