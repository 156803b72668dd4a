"""MMEngine's DDP wrapper for several CPU processes (gloo), SyncBN
included."""
import logging

from mmengine.logging import print_log
from mmengine.model import MMDistributedDataParallel
from torch import nn

from mmdist.models.layers import to_cpu_sync_bn
from mmdist.registry import MODEL_WRAPPERS


@MODEL_WRAPPERS.register_module()
class CPUDistributedDataParallel(MMDistributedDataParallel):
    """``MMDistributedDataParallel`` whose SyncBN layers run on CPU.

    torch's DDP refuses a CPU module with ``SyncBatchNorm`` layers, and
    every mmseg and mmyolo config has them. Before wrapping, each becomes
    mmdist's :class:`~mmdist.models.layers.CPUSyncBatchNorm`: the same
    parameters and buffers, its batch statistics shared over the process
    group as on GPUs. ``mmdist.apis.cpu_distributed`` chooses this wrapper
    for MMEngine's default one when several processes run without CUDA.

    Args:
        module: The model to wrap.
        **kwargs: The arguments of ``MMDistributedDataParallel``.
    """

    def __init__(self, module: nn.Module, **kwargs) -> None:
        count = to_cpu_sync_bn(module)
        if count:
            print_log(
                f'mmdist: {count} SyncBN layers run on CPU, their batch '
                'statistics shared between the processes over '
                'torch.distributed as on GPUs (mmdist.CPUSyncBatchNorm)',
                logger='current', level=logging.INFO)
        super().__init__(module=module, **kwargs)
