"""mmdist.compat.mmengine: training checkpoints under safe loading, a
config formatted once, any default hook removed by None."""
import textwrap

import numpy as np
import pytest
import torch

import mmdist  # noqa: F401  applies the fixes
from tests.test_compat.utils import REPO, run_python


def _save_mmengine_style_checkpoint(path):
    from mmengine.logging import MessageHub
    from mmengine.runner.checkpoint import save_checkpoint
    hub = MessageHub.get_instance('mmdist-test-compat')
    hub.update_scalar('train/loss', 1.5)
    hub.update_scalar('train/lr', np.float64(0.01))
    checkpoint = dict(
        meta=dict(epoch=1, iter=10, message_hub=hub.state_dict(),
                  seed=np.int64(3)),
        state_dict=dict(weight=torch.arange(4.0)))
    save_checkpoint(checkpoint, str(path))


def test_mmengine_training_checkpoint_loads_with_weights_only(tmp_path):
    path = tmp_path / 'epoch_1.pth'
    _save_mmengine_style_checkpoint(path)
    load = f"""
        import torch
        from mmengine.runner.checkpoint import _load_checkpoint
        ckpt = _load_checkpoint({str(path)!r}, map_location='cpu')
        assert torch.equal(ckpt['state_dict']['weight'], torch.arange(4.0))
        print(type(ckpt['meta']['message_hub']['log_scalars']['train/loss'])
              .__name__)
    """
    stock = run_python(load)
    fixed = run_python('import mmdist\n' + textwrap.dedent(load))
    assert fixed.returncode == 0, fixed.stderr
    assert 'HistoryBuffer' in fixed.stdout
    if stock.returncode == 0:
        pytest.skip('torch.load unpickles mmengine checkpoints unpatched')
    assert 'weights_only' in stock.stderr


class NotAllowed:
    pass


class GetattrPayload:
    """Pickles as getattr(np.dtype, 'mro'), which the restricted getattr
    must refuse: it resolves HistoryBuffer statistics methods only."""

    def __reduce__(self):
        return getattr, (np.dtype, 'mro')


def test_safe_loading_still_refuses_other_objects(tmp_path):
    if not hasattr(torch.serialization, 'add_safe_globals'):
        pytest.skip('torch < 2.4 has no weights_only allowlist')
    path = tmp_path / 'evil.pth'
    torch.save(dict(state_dict={}, payload=NotAllowed()), path)
    from mmengine.runner.checkpoint import _load_checkpoint
    with pytest.raises(Exception, match='weights_only'):
        _load_checkpoint(str(path), map_location='cpu')
    torch.save(dict(payload=GetattrPayload()), path)
    with pytest.raises(Exception, match='HistoryBuffer statistics methods'):
        _load_checkpoint(str(path), map_location='cpu')
    # Plain weights files keep loading with weights_only=True.
    weights = tmp_path / 'weights.pth'
    torch.save(dict(state_dict=dict(w=torch.ones(2))), weights)
    assert torch.load(weights, weights_only=True)['state_dict']['w'].sum() == 2


def test_a_config_is_formatted_once_and_as_yapf_formats_it():
    from mmengine.config import Config
    from yapf.yapflib.yapf_api import FormatCode

    config = Config.fromfile(f'{REPO}/configs/dist_resnet18_in1k.py')
    text = config.pretty_text
    # yapf leaves it as it is (MMEngine's style), and the second time it is
    # the same object: remembered, not formatted again.
    style = dict(based_on_style='pep8',
                 blank_line_before_nested_class_or_def=True,
                 split_before_expression_after_opening_paren=True)
    assert FormatCode(text, style_config=style)[0] == text
    assert config.pretty_text is text
    config.train_cfg.max_epochs = 1  # another text, formatted anew
    changed = config.pretty_text
    assert changed != text and 'max_epochs=1' in changed


def test_any_default_hook_is_removed_by_none(tmp_path):
    from mmengine.runner import Runner
    from torch import nn

    from mmdist.engine import TeacherEvalHook

    def hook_types(**default_hooks):
        runner = Runner(model=nn.Linear(1, 1), work_dir=str(tmp_path),
                        default_hooks=default_hooks)
        return {type(h).__name__ for h in runner.hooks}

    assert 'TeacherEvalHook' in hook_types(
        teacher_eval=dict(type='mmdist.TeacherEvalHook'))
    assert TeacherEvalHook.__name__ not in hook_types(teacher_eval=None)
    # MMEngine's own hooks are removed as before.
    assert 'IterTimerHook' not in hook_types(timer=None)
    assert 'IterTimerHook' in hook_types()


def test_a_collate_fn_of_another_packages_config_builds():
    # What MMEngine makes of mmyolo's collate_fn in a config that inherits
    # 'mmyolo::...': the function with its scope.
    from mmdet.structures import DetDataSample
    from mmdet.structures.bbox import HorizontalBoxes
    from mmengine.runner import Runner
    from mmengine.structures import InstanceData
    from mmyolo.datasets import yolov5_collate
    sample = DetDataSample(gt_instances=InstanceData(
        bboxes=HorizontalBoxes(torch.tensor([[1., 2., 3., 4.]])),
        labels=torch.tensor([5])))
    item = dict(inputs=torch.zeros(3, 8, 8), data_samples=sample)
    loader = dict(batch_size=1, dataset=[item], sampler=dict(
        type='DefaultSampler', shuffle=False),
        collate_fn=dict(type='yolov5_collate', _scope_='mmyolo'))
    built = Runner.build_dataloader(loader)
    assert built.collate_fn.func is yolov5_collate
    assert built.collate_fn.keywords == {}
    batch = next(iter(built))
    assert batch['data_samples']['bboxes_labels'].tolist() == [
        [0, 5, 1, 2, 3, 4]]
    # MMEngine's own passes _scope_ on to the function.
    stock = Runner.build_dataloader.stock(loader)
    with pytest.raises(TypeError, match="unexpected keyword argument "
                       "'_scope_'"):
        next(iter(stock))
