# An mmyolo detector (YOLOv5, YOLOv8, YOLOX, RTMDet) to ONNX Runtime,
# through mmyolo's own mmdeploy codebase (mmyolo.deploy: its head's
# predict_by_feat rewritten, ONNX's NonMaxSuppression, no custom op).
_base_ = ['./detection_onnxruntime_dynamic.py']

codebase_config = dict(type='mmyolo', module=['mmyolo.deploy'])
