"""Clip and Swish: BVLC master layers the reference Caffe build lacks. Expected values are
computed by hand from clip_layer.cpp / swish_layer.cpp; OpenCV's Caffe importer checks Swish."""
import numpy as np
import pytest

import caffe2onnx
from caffe2onnx.converter import max_opset
from caffe2onnx.validators.caffe_reference import caffe_available
from caffe2onnx.validators.references import opencv_module
from harness import assert_close, numpy_blobs, onnx_blobs

X = np.array([[-3.0, -0.5, 0.0, 0.5, 3.0, np.nan]], np.float32)

# clip_layer.cpp: top = std::max(min, std::min(x, max)). std::min(NaN, max) returns NaN (max < NaN is
# false) and std::max(min, NaN) returns min (min < NaN is false): NaN becomes min. With min > max
# every value, NaN included, becomes min.
CLIP = {
    "min: -1 max: 1": [-1.0, -0.5, 0.0, 0.5, 1.0, -1.0],
    "min: 0 max: 6": [0.0, 0.0, 0.0, 0.5, 3.0, 0.0],
    "min: 2 max: 1": [2.0] * 6,
}
# swish_layer.cpp: top = x * sigmoid(beta * x); sigmoid(z) = 1 / (1 + e^-z):
# sigmoid(-3) = 0.0474259, sigmoid(-0.5) = 0.3775407, sigmoid(0.5) = 0.6224593, sigmoid(3) = 0.9525741;
# with beta 2: sigmoid(-6) = 0.0024726, sigmoid(-1) = 0.2689414, sigmoid(1) = 0.7310586, sigmoid(6) = 0.9975274.
SWISH = {
    "": [-0.1422776, -0.1887703, 0.0, 0.3112297, 2.8577223, np.nan],
    "swish_param { beta: 2 }": [-0.0074178, -0.1344707, 0.0, 0.3655293, 2.9925822, np.nan],
}


def _net(tmp_path, layer: str):
    path = tmp_path / "net.prototxt"
    path.write_text('layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 1 dim: 6 } } }\n'
                    + layer)
    return caffe2onnx.load(path), path


def _check(net, want):
    expected = {"out": np.array([want], np.float32)}
    assert_close(numpy_blobs(net, {"data": X}), expected, ["out"], max_abs=1e-6, what="NumPy reference")
    for opset in sorted({11, max_opset()}):
        assert_close(onnx_blobs(net, opset, {"data": X}), expected, ["out"], max_abs=1e-6, what=f"ONNX opset {opset}")


@pytest.mark.parametrize("body", sorted(CLIP))
def test_clip_hand_computed(tmp_path, body):
    net, _ = _net(tmp_path, f'layer {{ name: "l" type: "Clip" bottom: "data" top: "out" clip_param {{ {body} }} }}')
    _check(net, CLIP[body])


@pytest.mark.parametrize("param", sorted(SWISH))
def test_swish_hand_computed(tmp_path, param):
    net, _ = _net(tmp_path, f'layer {{ name: "l" type: "Swish" bottom: "data" top: "out" {param} }}')
    _check(net, SWISH[param])


def test_clip_needs_both_bounds(tmp_path):
    with pytest.raises(caffe2onnx.UnsupportedLayerError, match="clip_param.max: is required"):
        _net(tmp_path, 'layer { name: "l" type: "Clip" bottom: "data" top: "out" clip_param { min: 0 } }')


def test_swish_matches_opencv(tmp_path):
    cv2 = opencv_module()
    if cv2 is None:
        pytest.skip("opencv-python-headless<5 is not installed (optional independent check)")
    net, path = _net(tmp_path, 'layer { name: "l" type: "Swish" bottom: "data" top: "out" }')
    x = np.linspace(-6, 6, 6, dtype=np.float32)[None]
    cv = cv2.dnn.readNetFromCaffe(str(path))
    cv.setInput(x, "data")
    want = {"out": cv.forward("l")}
    assert_close(numpy_blobs(net, {"data": x}), want, ["out"], max_abs=1e-6, what="NumPy reference")
    assert_close(onnx_blobs(net, max_opset(), {"data": x}), want, ["out"], max_abs=1e-6)


def test_reference_caffe_lacks_them():
    """Why these two are checked by hand: the reference Caffe build does not register them."""
    if not caffe_available():
        pytest.skip("real Caffe is not installed")
    import subprocess
    import sys
    r = subprocess.run([sys.executable, "-c", "import caffe; t = caffe.layer_type_list(); "
                        "print('Clip' in t, 'Swish' in t)"], capture_output=True, text=True,
                       env={"GLOG_minloglevel": "2", "PATH": ""})
    assert r.stdout.split() == ["False", "False"]
