# Classic KD in DIST's place, as in ../kd_retinanet_r50_coco.py.
_base_ = ['./dist_retinanet_r18_toy.py']

kd = dict(_delete_=True, type='mmdist.KDLoss', activation='sigmoid',
          tau=1.0, loss_weight=1.0)
model = dict(distiller=dict(logits=dict(cls=dict(loss=kd))))
