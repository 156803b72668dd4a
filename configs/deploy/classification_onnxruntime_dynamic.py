# An mmpretrain classifier to ONNX Runtime: the class probabilities
# (softmax inside the graph).
_base_ = ['./_base_/onnxruntime_dynamic.py']

onnx_config = dict(dynamic_axes=dict(
    input={0: 'batch', 2: 'height', 3: 'width'}, output={0: 'batch'}))
codebase_config = dict(type='mmpretrain', task='Classification')
