from .dist_loss import DISTLoss, dist_loss, dist_loss_terms

__all__ = ['DISTLoss', 'dist_loss', 'dist_loss_terms']
