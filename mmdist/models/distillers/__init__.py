from .logit_distiller import LogitDistiller

__all__ = ['LogitDistiller']
