from .dist_loss import DISTLoss, dist_loss, dist_loss_terms
from .kd_loss import KDLoss, kd_loss

__all__ = ['DISTLoss', 'dist_loss', 'dist_loss_terms', 'KDLoss', 'kd_loss']
