# Classic KD in DIST's place: softmax KL over the 81 logits of each RoI.
_base_ = ['./_base_/faster_rcnn_distill.py']

kd = dict(_delete_=True, type='mmdist.KDLoss', activation='softmax',
          tau=1.0, loss_weight=1.0)
model = dict(distiller=dict(logits=dict(roi_cls=dict(loss=kd))))
