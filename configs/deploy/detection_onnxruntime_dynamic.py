# An mmdet detector (boxes, no masks) to ONNX Runtime: boxes and labels
# after NMS inside the graph (ONNX's NonMaxSuppression, no custom op).
_base_ = ['./_base_/onnxruntime_dynamic.py']

onnx_config = dict(
    output_names=['dets', 'labels'],
    dynamic_axes=dict(
        input={0: 'batch', 2: 'height', 3: 'width'},
        dets={0: 'batch', 1: 'num_dets'},  # (x1, y1, x2, y2, score)
        labels={0: 'batch', 1: 'num_dets'}))
# The model's own test_cfg (nms_pre, score_thr, the NMS IoU, max_per_img)
# wins over these where it has them.
detection_post_processing = dict(
    score_threshold=0.05,
    confidence_threshold=0.005,
    iou_threshold=0.5,
    max_output_boxes_per_class=200,
    pre_top_k=5000,
    keep_top_k=100,
    background_label_id=-1)
codebase_config = dict(
    type='mmdet', task='ObjectDetection', model_type='end2end',
    post_processing=detection_post_processing)
