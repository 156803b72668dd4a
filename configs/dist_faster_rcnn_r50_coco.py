# DIST on the RoI classifier, as the authors: softmax over the 81 logits
# (80 classes and background) of each RoI, beta = gamma = 1.
_base_ = ['./_base_/faster_rcnn_distill.py']

dist = dict(type='mmdist.DISTLoss', activation='softmax', beta=1.0,
            gamma=1.0, tau=1.0, loss_weight=1.0, log_terms=True)
model = dict(distiller=dict(logits=dict(roi_cls=dict(loss=dist))))
