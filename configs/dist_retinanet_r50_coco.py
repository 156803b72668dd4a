# DIST on RetinaNet's classification logits, every FPN level, as the authors:
# sigmoid, beta = gamma = 1, each position one row of 9 anchors x 80 classes.
# dist_retinanet_r50_coco_anchor_rows.py makes each anchor its own row of 80
# classes instead.
_base_ = ['./_base_/retinanet_distill.py']

dist = dict(type='mmdist.DISTLoss', activation='sigmoid', beta=1.0,
            gamma=1.0, tau=1.0, loss_weight=1.0, log_terms=True)
model = dict(distiller=dict(logits=dict(cls=dict(loss=dist))))
