# An mmyolo detector (YOLOv5, YOLOv8, YOLOX, RTMDet) to ONNX Runtime,
# through mmyolo's own mmdeploy codebase (mmyolo.deploy: its head's
# predict_by_feat rewritten, ONNX's NonMaxSuppression, no custom op).
_base_ = ['./detection_onnxruntime_dynamic.py']

# mmyolo's detectors keep up to 30000 candidates before NMS (test_cfg's
# nms_pre) and 300 boxes after it: the exported graph keeps as many as
# PyTorch does (mmdeploy's own configs keep 5000, and 200 of each class).
codebase_config = dict(
    type='mmyolo', module=['mmyolo.deploy'],
    post_processing=dict(pre_top_k=30000, max_output_boxes_per_class=300))
