"""The distilled student to ONNX Runtime: export through mmdeploy, the
agreement with PyTorch, the latency, and evaluation on a data set."""
from .agreement import TOLERANCES, clip_to_image
from .backend import (DeployError, check_deploy_installed,
                      load_deploy_config, onnx_test_runner)
from .export import deploy_student, summary
from .student import (DEPLOY_CONFIGS, build_model, deploy_task,
                      student_config)

__all__ = [
    'DEPLOY_CONFIGS', 'DeployError', 'TOLERANCES', 'build_model',
    'check_deploy_installed', 'clip_to_image', 'deploy_student',
    'deploy_task', 'load_deploy_config', 'onnx_test_runner',
    'student_config', 'summary'
]
