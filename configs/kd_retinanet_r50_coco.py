# Classic KD in DIST's place, for side-by-side runs: per-class sigmoid KL
# on the same logits of every FPN level.
_base_ = ['./_base_/retinanet_distill.py']

kd = dict(type='mmdist.KDLoss', activation='sigmoid', tau=1.0,
          loss_weight=1.0)
model = dict(distiller=dict(logits=dict(cls=dict(loss=kd))))
