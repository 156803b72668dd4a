# DIST on the RoI classifier, as the authors: softmax over the 81 logits
# (80 classes and background) of each RoI, beta = gamma = 1.
_base_ = ['./_base_/faster_rcnn_distill.py']

model = dict(
    distiller=dict(
        distill_losses=dict(
            loss_roi_cls=dict(type='mmdist.DISTLoss', activation='softmax',
                              beta=1.0, gamma=1.0, tau=1.0, loss_weight=1.0,
                              log_terms=True))))
