# DIST on the classification logits of any OpenMMLab detector or segmenter:
# what configs/dist_<student>_*.py beyond the paper share. A config inherits
# the student's stock config and this file, then sets model from
# logit_distill_model with its teacher and logit modules:
#   model = dict(_delete_=True, architecture=_base_.model,
#                **_base_.logit_distill_model)
#   model.update(teacher=dict(cfg_path='mmdet::...'), teacher_ckpt='...')
#   model.distiller.logits.cls.update(student='bbox_head.<cls>',
#                                     teacher='bbox_head.<cls>')
# Student and teacher must normalise images alike (the teacher sees the
# student's preprocessed batch): mmdist checks it when the model is built.
_base_ = ['./mmdist_hooks.py']

# Sigmoid heads (RetinaNet, FCOS, ATSS, GFL, RTMDet): each position of each
# level is a row of its anchors x classes, every level one DIST, summed.
sigmoid_dist = dict(type='mmdist.DISTLoss', activation='sigmoid', beta=1.0,
                    gamma=1.0, tau=1.0, loss_weight=1.0, log_terms=True)
logit_distill_model = dict(
    _scope_='mmrazor',
    type='mmdist.FrozenTeacherDistill',
    distiller=dict(
        type='mmdist.LogitDistiller',
        logits=dict(cls=dict(loss=sigmoid_dist))))
