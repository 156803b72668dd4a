"""The teacher's runtime options of FrozenTeacherDistill: a stream of its
own (a no-op on the CPU), channels-last memory, torch.compile's options
and the compiler check (tests/test_tools/test_teacher_compile.py trains
with a compiled teacher through tools/train.py)."""
import copy

import pytest
import torch

import mmdist  # noqa: F401
from mmdist.models.algorithms.teacher_runtime import (check_compiler,
                                                      compile_options)
from mmdist.testing import SETTINGS, make_batch, setting_config

SEG = next(s for s in SETTINGS if s.name == 'deeplabv3')


def build(**options):
    from mmengine.registry import init_default_scope

    from mmdist.registry import MODELS
    cfg = copy.deepcopy(setting_config(SEG).model)
    for pre in (cfg.data_preprocessor, cfg.architecture.data_preprocessor):
        pre.size = (64, 128)
    cfg.update(options)
    init_default_scope('mmrazor')
    torch.manual_seed(0)
    return MODELS.build(cfg)


def losses(model):
    model.train()
    data = model.data_preprocessor(make_batch(SEG, 2, (64, 128)), True)
    torch.manual_seed(1)  # the decode heads' dropout
    with torch.no_grad():
        return {k: v for k, v in model.loss(data['inputs'],
                                            data['data_samples']).items()
                if k.startswith(('distill', 'student'))}


def test_teacher_stream_changes_nothing_on_the_cpu():
    plain, streamed = losses(build()), losses(build(teacher_stream=True))
    assert plain.keys() == streamed.keys()
    for name in plain:
        assert torch.equal(plain[name], streamed[name]), name


def test_channels_last_gives_the_same_losses():
    model = build(channels_last=True)
    conv = model.student.backbone.stem[0].weight
    assert conv.is_contiguous(memory_format=torch.channels_last)
    assert not conv.is_contiguous()
    plain, last = losses(build()), losses(model)
    for name in plain:
        torch.testing.assert_close(last[name], plain[name], rtol=1e-5,
                                   atol=1e-6)


def test_compile_options():
    assert compile_options(False, True) is None
    assert compile_options(True, True) == dict(dynamic=True)
    assert compile_options(dict(mode='reduce-overhead'), None) == dict(
        mode='reduce-overhead', dynamic=None)
    assert compile_options(dict(dynamic=False), True) == dict(dynamic=False)
    with pytest.raises(ValueError, match='teacher_compile=.fast.: use True'):
        compile_options('fast', None)


def test_no_compiler_stops_before_training(monkeypatch):
    import torch._inductor.config as inductor
    monkeypatch.setattr(inductor.cpp, 'cxx', ('no-such-compiler', ))
    monkeypatch.setenv('CXX', 'no-such-compiler')
    with pytest.raises(RuntimeError, match='needs a C.. compiler for the '
                       'CPU.*model.teacher_compile=False'):
        check_compiler(dict(dynamic=None))
    check_compiler(dict(backend='eager'))  # no compiler needed
    with pytest.raises(RuntimeError, match='model.teacher_compile'):
        build(teacher_compile=True)


@pytest.mark.gpu
def test_teacher_stream_on_cuda_gives_the_same_losses():
    plain = losses(build().cuda())
    streamed = build(teacher_stream=True).cuda()
    for _ in range(3):  # the stream's memory is reused from step to step
        result = losses(streamed)
    for name in plain:
        torch.testing.assert_close(result[name], plain[name])
