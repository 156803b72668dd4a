from .sync_bn import CPUSyncBatchNorm, sync_batch_norm, to_cpu_sync_bn

__all__ = ['CPUSyncBatchNorm', 'sync_batch_norm', 'to_cpu_sync_bn']
