# Classic KD in DIST's place: softmax KL over the 81 logits of each RoI.
_base_ = ['./_base_/faster_rcnn_distill.py']

model = dict(
    distiller=dict(
        distill_losses=dict(
            loss_roi_cls=dict(type='mmdist.KDLoss', activation='softmax',
                              tau=1.0, loss_weight=1.0))))
