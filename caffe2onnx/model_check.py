"""The checks every built ONNX model passes before it is written (no import of the converter)."""
from __future__ import annotations

import os

from . import onnx_lite as onnx  # not `import onnx`: see onnx_lite
from .errors import ConversionError, ModelCheckError

ORT_QUIET = 3  # onnxruntime log severity: errors only reach us as exceptions, below our own message


def quiet_onnxruntime():
    """``onnxruntime`` with its default logger silenced (our message names the failure) and its
    telemetry off unless the user chose otherwise: onnxruntime 1.32 on Linux records each use in
    an sqlite file under ~/.cache/Microsoft/DeveloperTools (fsynced, measured with strace) for
    upload, and caffe2onnx writes nothing but its outputs. Read when onnxruntime is imported."""
    os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
    import onnxruntime as ort
    ort.set_default_logger_severity(ORT_QUIET)
    return ort


def check_model(model: onnx.ModelProto) -> None:
    """onnx's full checker, strict shape inference, and an onnxruntime session load."""
    try:
        onnx.check_model(model, full_check=True)
        onnx.infer_shapes(model, check_type=True, strict_mode=True, data_prop=True)
    except (onnx.ValidationError, onnx.InferenceError) as e:
        raise ModelCheckError(f"the ONNX model fails onnx's checks: {e}") from None
    try:
        ort = quiet_onnxruntime()
    except ImportError:
        raise ConversionError("onnxruntime is not installed; it is needed to check the model") from None
    try:
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        opts.log_severity_level = ORT_QUIET
        ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    except Exception as e:  # onnxruntime raises its own exception types
        raise ModelCheckError(f"onnxruntime cannot load the ONNX model: {e}") from None
