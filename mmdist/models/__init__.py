from .algorithms import *  # noqa: F401,F403
from .distillers import *  # noqa: F401,F403
from .losses import *  # noqa: F401,F403
from .task_modules import *  # noqa: F401,F403
from .layers import *  # noqa: F401,F403
from .wrappers import *  # noqa: F401,F403
