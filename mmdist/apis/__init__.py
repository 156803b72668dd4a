from .convert import convert_student
from .runner import (add_runner_args, build_runner, check_data,
                     check_local_file, load_config, setup_cpu_distributed)

__all__ = [
    'add_runner_args', 'build_runner', 'check_data', 'check_local_file',
    'load_config', 'setup_cpu_distributed', 'convert_student'
]
