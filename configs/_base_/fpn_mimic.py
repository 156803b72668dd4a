# The authors' "mimic" term, added to a DIST config: MSE between each of the
# 5 FPN levels of the teacher and the student's, the student's passed
# through a 3x3 conv (256 -> 256 channels) per level, weight 1. A config
# inherits this file beside a DIST config and merges the parts:
# model = dict(distiller=_base_.mimic_distiller).
# Levels by index: P3-P7 for RetinaNet, P2-P6 for Faster R-CNN.
mimic_levels = (0, 1, 2, 3, 4)
mimic_distiller = dict(
    student_recorders=dict(fpn=dict(type='ModuleOutputs', source='neck')),
    teacher_recorders=dict(fpn=dict(type='ModuleOutputs', source='neck')),
    connectors={
        f'mimic_fpn{level}': dict(
            type='ConvModuleConnector', in_channel=256, out_channel=256,
            kernel_size=3, padding=1, act_cfg=None)
        for level in mimic_levels
    },
    distill_losses={
        f'loss_mimic_fpn{level}': dict(
            type='L2Loss', loss_weight=1.0, normalize=False,
            div_element=True)
        for level in mimic_levels
    },
    loss_forward_mappings={
        f'loss_mimic_fpn{level}': dict(
            s_feature=dict(from_student=True, recorder='fpn',
                           data_idx=level, connector=f'mimic_fpn{level}'),
            t_feature=dict(from_student=False, recorder='fpn',
                           data_idx=level))
        for level in mimic_levels
    })
