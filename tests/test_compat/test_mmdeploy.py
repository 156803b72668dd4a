"""mmdist.compat.mmdeploy: mmdeploy's export with the TorchScript-based
exporter, inside the block only; a torch without it is named."""
import io

import pytest
import torch

from mmdist.compat import mmdeploy as fix


class TinyNet(torch.nn.Module):

    def forward(self, x):
        return torch.relu(x) * 2


def export(model, x):
    # As mmdeploy calls it: no dynamo argument.
    f = io.BytesIO()
    torch.onnx.export(model, (x, ), f, input_names=['input'],
                      opset_version=11)
    return f.getvalue()


def test_the_block_exports_with_the_torchscript_exporter():
    pytest.importorskip('onnx', reason='the deploy extra: make install '
                        'DEPLOY=1 (make test installs it)')
    if not fix._defaults_to_dynamo():
        pytest.skip(f'torch {torch.__version__} exports with TorchScript '
                    'by default')
    original = torch.onnx.export
    with fix.mmdeploy_export():
        assert torch.onnx.export is not original
        onnx_bytes = export(TinyNet(), torch.randn(1, 3))
        assert torch.onnx.symbolic_opset9._cast_Long is fix._cast_long
    assert torch.onnx.export is original
    assert not hasattr(torch.onnx.symbolic_opset9, '_cast_Long')
    import onnx
    graph = onnx.load_from_string(onnx_bytes).graph
    assert [n.op_type for n in graph.node] == ['Relu', 'Constant', 'Mul']


def test_the_block_gives_back_what_it_found_when_the_export_fails():
    original = torch.onnx.export
    with pytest.raises(ZeroDivisionError):
        with fix.mmdeploy_export():
            1 / 0
    assert torch.onnx.export is original
    assert not hasattr(torch.onnx.symbolic_opset9, '_cast_Long')


def test_a_torch_without_the_torchscript_exporter_is_named(monkeypatch):
    monkeypatch.setattr(fix, 'torchscript_exporter_available', lambda: False)
    with pytest.raises(RuntimeError, match=r'has no TorchScript-based ONNX '
                       r'exporter .* torch 2\.14\.1 has it .* pip install '
                       r'torch==2\.14\.1'):
        with fix.mmdeploy_export():
            pass
