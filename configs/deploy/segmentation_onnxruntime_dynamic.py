# An mmseg segmentor to ONNX Runtime: the label map at the input's size
# (the logits resized and their argmax taken inside the graph). The model
# must test in 'whole' mode (mmdeploy rewrites EncoderDecoder.predict).
_base_ = ['./_base_/onnxruntime_dynamic.py']

onnx_config = dict(dynamic_axes=dict(
    input={0: 'batch', 2: 'height', 3: 'width'},
    output={0: 'batch', 2: 'height', 3: 'width'}))
codebase_config = dict(type='mmseg', task='Segmentation', with_argmax=True)
