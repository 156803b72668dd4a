from .convert import convert_student
from .runner import (add_runner_args, build_runner, check_data,
                     check_load_from, check_local_file, cpu_distributed,
                     load_config, make_resumable)
from .teacher import teacher_test_config

__all__ = [
    'add_runner_args', 'build_runner', 'check_data', 'check_load_from',
    'check_local_file', 'convert_student', 'cpu_distributed', 'load_config',
    'make_resumable', 'teacher_test_config'
]
