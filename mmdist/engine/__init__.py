from .hooks import *  # noqa: F401,F403
from .loops import ResumableIterBasedTrainLoop  # noqa: F401
from .optimizers import *  # noqa: F401,F403
