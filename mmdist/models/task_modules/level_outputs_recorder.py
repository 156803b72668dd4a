"""Record the output of every level of a head, shared or per-level."""
from typing import List, Optional

from mmrazor.models.task_modules import ModuleOutputsRecorder
from torch import nn

from mmdist.registry import TASK_UTILS


@TASK_UTILS.register_module()
class LevelOutputsRecorder(ModuleOutputsRecorder):
    """MMRazor's ModuleOutputs recorder that also takes a ModuleList.

    A head shares one module across its levels (RetinaNet's ``retina_cls``,
    called once per FPN level) or keeps one module per level in a
    ModuleList (RTMDet's ``rtm_cls``). Either way the data buffer holds the
    outputs in the order they were computed: level by level. Use it as
    ``dict(type='mmdist.LevelOutputs', source='bbox_head.rtm_cls')``.

    Attributes:
        modules: The hooked modules, one per level for a ModuleList.
        per_level: Whether ``source`` is a ModuleList (its length is the
            number of levels, known before any forward).
    """

    modules: List[nn.Module]
    per_level: bool

    def prepare_from_model(self, model: Optional[nn.Module] = None) -> None:
        assert model is not None, 'model can not be None.'
        try:
            module = model.get_submodule(self.source)
        except AttributeError:
            raise AttributeError(
                f'{self.source!r} is not a module of '
                f'{type(model).__name__}: name one of its modules, as '
                "model.named_modules() lists them (e.g. "
                "'bbox_head.retina_cls')") from None
        self.per_level = isinstance(module, nn.ModuleList)
        self.modules = list(module) if self.per_level else [module]
        for member in self.modules:
            member.register_forward_hook(self.forward_hook)
