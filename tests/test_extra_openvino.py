"""The reference-Caffe extra layers' cases run in OpenVINO (CPU, f32) at opset 11 and the newest,
compared with real Caffe's blobs (live or golden) like the onnxruntime runs."""
import numpy as np
import pytest

import caffe2onnx
import test_extra
import test_extra_activation
import test_resize
from caffe2onnx.converter import build_model, check_model
from caffe2onnx.validators.onnx_runner import expose_tensors
from harness import OPSETS, assert_close, input_layer, numpy_blobs, reference

ov = pytest.importorskip("openvino", reason="OpenVINO is not installed; these checks run where it is")
_CORE = ov.Core()
OV_OPSETS = sorted({11, OPSETS[-1]})

CASES = {
    **{f"extra_activation_{k}": (input_layer((2, 3, 5, 7)) + t, s, None)
       for k, (t, s) in test_extra_activation.CASES.items()},
    **{f"extra_{k}": (input_layer(shape) + t, 1.0, tw) for k, (shape, t, tw) in test_extra.CASES.items()},
    **{f"resize_{k}": (input_layer(shape) + t, 1.0, None) for k, (shape, t) in test_resize.CASES.items()},
}


def run_openvino(model, inputs: dict[str, np.ndarray], tmp_path) -> dict[str, np.ndarray]:
    """Every graph output from OpenVINO's CPU plugin with f32 inference (its default there is bf16)."""
    path = tmp_path / "model.onnx"
    path.write_bytes(model.SerializeToString())
    compiled = _CORE.compile_model(_CORE.read_model(str(path)), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    result = compiled(inputs)
    return {out.get_any_name(): np.asarray(result[out]) for out in compiled.outputs}


def _ov_blobs(net, opset, inputs, tmp_path):
    model = build_model(net, opset=opset)
    check_model(model)
    model = expose_tensors(model, net.tensors, {n: t.shape for n, t in net.tensors.items()})
    return {**inputs, **run_openvino(model, inputs, tmp_path)}


@pytest.mark.parametrize("case", sorted(CASES))
def test_openvino_f32(tmp_path, case):
    text, scale, tweak = CASES[case]
    net_path, model_path, ref = reference(tmp_path, case, text, {}, input_scale=scale, tweak_weights=tweak)
    net = caffe2onnx.load(net_path, model_path)
    for opset in OV_OPSETS:
        assert_close(_ov_blobs(net, opset, ref.inputs, tmp_path), ref.blobs, net.tensors, what=f"OpenVINO opset {opset}")


@pytest.mark.parametrize("case", sorted(test_resize.SEGNET))
def test_openvino_segnet_upsample(tmp_path, case):
    shape, body = test_resize.SEGNET[case]
    path = tmp_path / "net.prototxt"
    path.write_text(input_layer(shape) + test_resize._POOL + test_resize._segnet_up(body))
    net = caffe2onnx.load(path, random_weights=0)
    x = {"data": np.random.default_rng(1).standard_normal(shape).astype(np.float32)}
    for opset in OV_OPSETS:
        assert_close(_ov_blobs(net, opset, x, tmp_path), numpy_blobs(net, x), net.tensors, what=f"OpenVINO opset {opset}")
