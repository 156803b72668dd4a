# DIST on the RoI classifier of a two-stage detector (Faster, Mask or
# Cascade R-CNN): mmdist.RoITeacherDistill runs the teacher's backbone and
# FPN, then one stage of its RoI head classifies exactly the RoIs that the
# student's sampler chose, so that every row is the same box on both sides.
# A config inherits the student's stock config and this file:
#   model = dict(_delete_=True, architecture=_base_.model,
#                **_base_.roi_distill_model)
#   model.update(teacher=dict(cfg_path='mmdet::...'), teacher_ckpt='...')
# and, for a cascade teacher, its stage's classifier:
#   model['distiller']['logits']['roi_cls'].update(
#       teacher='roi_head.bbox_head.0.fc_cls')
_base_ = ['./mmdist_hooks.py']

# The authors' setting: softmax over the classes and background of each
# RoI, beta = gamma = 1.
roi_dist = dict(type='mmdist.DISTLoss', activation='softmax', beta=1.0,
                gamma=1.0, tau=1.0, loss_weight=1.0, log_terms=True)
roi_distill_model = dict(
    _scope_='mmrazor',
    type='mmdist.RoITeacherDistill',
    teacher_stage=0,
    student_rois=dict(recorder='rois', data_idx=1),
    distiller=dict(
        type='mmdist.LogitDistiller',
        logits=dict(roi_cls=dict(student='roi_head.bbox_head.fc_cls',
                                 teacher='roi_head.bbox_head.fc_cls',
                                 loss=roi_dist)),
        # (features, rois): the RoIs the student's sampler chose.
        student_recorders=dict(rois=dict(
            type='ModuleInputs', source='roi_head.bbox_roi_extractor'))))
