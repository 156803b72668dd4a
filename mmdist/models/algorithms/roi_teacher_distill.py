"""Two-stage distillation: the teacher classifies the student's RoIs."""
from typing import List, Optional, Tuple

import torch
from mmengine.structures import BaseDataElement
from mmrazor.models.task_modules import (ModuleInputsRecorder,
                                         ModuleOutputsRecorder)
from torch import Tensor, nn

from mmdist.registry import MODELS
from .frozen_teacher_distill import FrozenTeacherDistill


def roi_stage(roi_head: nn.Module,
              stage: int) -> Tuple[nn.Module, nn.Module]:
    """The RoI extractor and bbox head of one stage of an mmdet RoI head.

    A cascade head keeps one per stage in ModuleLists; a standard head
    (Faster R-CNN) has a single stage 0.
    """
    extractor, head = roi_head.bbox_roi_extractor, roi_head.bbox_head
    if isinstance(head, nn.ModuleList):
        if not 0 <= stage < len(head):
            raise ValueError(f'teacher_stage={stage} but the teacher RoI '
                             f'head has {len(head)} stages')
        return extractor[stage], head[stage]
    if stage != 0:
        raise ValueError(f'teacher_stage={stage} but the teacher RoI head '
                         'has a single stage (use 0)')
    return extractor, head


@MODELS.register_module()
class RoITeacherDistill(FrozenTeacherDistill):
    """Distill a two-stage detector's RoI classifier on the student's RoIs.

    The teacher computes its backbone and FPN features; the student runs its
    usual training forward (RPN, sampler, RoI head); then one stage of the
    teacher's RoI head (its RoI extractor and bbox head, stage 0 of a
    cascade by default) classifies exactly the RoIs that the student's
    sampler chose, over the teacher's own features. The teacher's RPN, its
    other stages and its mask head never run, and nothing of the teacher
    builds an autograd graph. Record the teacher's ``fc_cls`` (for example
    ``roi_head.bbox_head.0.fc_cls``) to distill the two classifications row
    by row.

    Args:
        student_rois: Where the student's RoIs are recorded: the name of a
            student recorder and the index of the RoIs in its record, by
            default the ``rois`` argument of a ``ModuleInputs`` recorder on
            ``roi_head.bbox_roi_extractor``: ``dict(recorder='rois',
            data_idx=1)``.
        teacher_stage: Which stage of the teacher's RoI head classifies.
        **kwargs: The arguments of :class:`FrozenTeacherDistill`.
    """

    teacher_runs_after_student = True

    def __init__(self,
                 student_rois: dict = dict(recorder='rois', data_idx=1),
                 teacher_stage: int = 0,
                 **kwargs) -> None:
        super().__init__(**kwargs)
        models = [('the student', self.student)] + [
            (info.who, model) for info, model in self.teacher_models()]
        for who, model in models:
            if not getattr(model, 'with_roi_head', False):
                raise ValueError(
                    f'{type(self).__name__} needs two-stage detectors with '
                    f'an RoI head; {who} is {type(model).__name__}')
        recorder = student_rois.get('recorder')
        if recorder not in self.distiller.student_recorders.recorders:
            raise ValueError(
                f'student_rois names the recorder {recorder!r}, which is not '
                'among the student recorders; add rois=dict(type='
                "'ModuleInputs', source='roi_head.bbox_roi_extractor')")
        # The teacher recorders stay open while the student runs: a method
        # or function recorder would record the student's calls too.
        for name, teacher_recorder in \
                self.distiller.teacher_recorders.recorders.items():
            if not isinstance(teacher_recorder, (ModuleOutputsRecorder,
                                                 ModuleInputsRecorder)):
                raise ValueError(
                    f'{type(self).__name__} supports teacher recorders of '
                    f'modules (ModuleOutputs, ModuleInputs) only; '
                    f'{name!r} is a {type(teacher_recorder).__name__}')
        self.student_rois = dict(student_rois)
        self.teacher_stage = teacher_stage
        for _, model in self.teacher_models():
            roi_stage(model.roi_head, teacher_stage)  # checks the stage

    def forward_teacher(self, teacher: nn.Module, inputs: Tensor,
                        data_samples: Optional[List[BaseDataElement]]
                        ) -> Tuple[Tensor, ...]:
        """Backbone and neck only; the RoIs come from the student."""
        return teacher.extract_feat(inputs)

    def teacher_forward_after_student(
            self, inputs: Tensor,
            data_samples: Optional[List[BaseDataElement]],
            teacher_outputs: list) -> None:
        """Classify the student's sampled RoIs with each teacher's stage,
        over that teacher's features (``teacher_outputs``)."""
        rois = self.distiller.get_record(
            from_student=True, **self.student_rois)
        for (info, teacher), feats in zip(self.teacher_models(),
                                          teacher_outputs):
            with self.teacher_precision(inputs, info.name):
                self._classify(teacher, feats, rois)

    def _classify(self, teacher: nn.Module, feats: Tuple[Tensor, ...],
                  rois: Tensor) -> None:
        roi_head = teacher.roi_head
        extractor, bbox_head = roi_stage(roi_head, self.teacher_stage)
        feats = feats[:extractor.num_inputs]
        if feats[0].dtype in (torch.float16, torch.bfloat16):
            # A half-precision teacher: mmcv's RoIAlign has no bfloat16
            # kernel and no half one on CPU, so it reads float32; the bbox
            # head after it runs under the teacher's autocast.
            feats = [feat.float() for feat in feats]
        roi_feats = extractor(feats, rois)
        if getattr(roi_head, 'with_shared_head', False):
            roi_feats = roi_head.shared_head(roi_feats)
        bbox_head(roi_feats)
