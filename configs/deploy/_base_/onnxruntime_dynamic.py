# ONNX Runtime on CPU with dynamic shapes: what mmdist's deploy configs
# share. mmdeploy 1.3.1 reads these keys (tools/deploy.py hands them to
# mmdeploy.apis.torch2onnx): the TorchScript-based exporter at opset 11,
# the weights inside the graph, any batch size and image size.
onnx_config = dict(
    type='onnx',
    export_params=True,
    # mmdeploy's default is True when the key is missing: every weight
    # would also be a graph input.
    keep_initializers_as_inputs=False,
    opset_version=11,
    save_file='end2end.onnx',
    input_names=['input'],
    output_names=['output'],
    input_shape=None,  # dynamic: the test pipeline's own resize
    # mmdeploy's graph optimiser needs its compiled extension, which its
    # wheel lacks; it would only log so.
    optimize=False,
    dynamic_axes=dict(input={0: 'batch', 2: 'height', 3: 'width'}))
backend_config = dict(type='onnxruntime')
