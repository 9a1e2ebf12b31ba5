import os

os.environ.setdefault("GLOG_minloglevel", "2")
# onnxruntime 1.32 keeps usage records under ~/.cache/Microsoft unless told not to (see model_check)
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
