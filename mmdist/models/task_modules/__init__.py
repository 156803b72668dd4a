from .level_outputs_recorder import LevelOutputsRecorder

__all__ = ['LevelOutputsRecorder']
