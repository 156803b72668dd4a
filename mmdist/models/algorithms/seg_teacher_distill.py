"""Segmentation distillation: the teacher runs its decode and aux heads."""
from typing import List, Optional

from mmengine.structures import BaseDataElement
from torch import Tensor, nn

from mmdist.registry import MODELS
from .frozen_teacher_distill import FrozenTeacherDistill


@MODELS.register_module()
class SegTeacherDistill(FrozenTeacherDistill):
    """Distill an mmseg EncoderDecoder from a frozen, forward-only teacher.

    The teacher's ``mode='tensor'`` forward runs only its decode head; here
    it runs its backbone, neck, decode head and auxiliary head(s) once,
    without losses or an autograd graph, so that recorders on both heads'
    ``conv_seg`` see the raw logits at the heads' own resolution.

    Args:
        **kwargs: The arguments of :class:`FrozenTeacherDistill`.
    """

    def forward_teacher(self, teacher: nn.Module, inputs: Tensor,
                        data_samples: Optional[List[BaseDataElement]]
                        ) -> list:
        feats = teacher.extract_feat(inputs)
        outputs = [feats, teacher.decode_head(feats)]
        aux = getattr(teacher, 'auxiliary_head', None)
        for head in aux if isinstance(aux, nn.ModuleList) else [aux]:
            if head is not None:
                outputs.append(head(feats))
        return outputs
