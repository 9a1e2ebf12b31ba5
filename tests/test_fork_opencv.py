"""OpenCV dnn as a second, independent check of the fork layers, where OpenCV is right.

OpenCV's Caffe importer has ShuffleChannel, ConvolutionDepthwise, Interp, ROIPooling,
PSROIPooling and Axpy. Where it disagrees with the fork, the fork's source decides and
the test below pins what OpenCV computes instead (so a change in either shows up).
"""
from __future__ import annotations

import numpy as np
import pytest

from caffe2onnx.validators.references import OpenCVReference, opencv_module
from test_fork_layers import F, ROIS, check_fork, inputs_text, layer, ramp

pytestmark = pytest.mark.skipif(opencv_module() is None, reason="opencv-python-headless<5 is not installed")


def opencv_and_numpy(tmp_path, text: str, inputs: dict | None = None):
    """(OpenCV's top, the NumPy reference's top) for a one-layer net with top 'out'."""
    path, model, net, inputs, ref = check_fork(tmp_path, text, inputs, opsets=())
    cv = OpenCVReference().run(net, path, model, inputs)
    return np.asarray(cv["out"]), ref["out"]


AGREE = {  # OpenCV computes what the fork's source says
    "shuffle": (dict(data=(2, 9, 3, 4)), layer("ShuffleChannel", "shuffle_channel_param { group: 3 }"), None),
    "convdw": (dict(data=(2, 5, 7, 6)), layer("ConvolutionDepthwise", "convolution_param { num_output: 5 "
               "kernel_size: 3 pad: 1 stride: 2 bias_term: true }"), None),
    "interp_zoom": (dict(data=(1, 3, 5, 4)), layer("Interp", "interp_param { zoom_factor: 3 }"), None),
    "interp_size": (dict(data=(1, 3, 5, 4)), layer("Interp", "interp_param { height: 7 width: 9 }"), None),
    "interp_one_column": (dict(data=(1, 3, 5, 4)), layer("Interp", "interp_param { height: 6 width: 1 }"), None),
    "roi_pooling": (dict(feat=(2, 4, 6, 9), rois=(6, 5)), layer(
        "ROIPooling", "roi_pooling_param { pooled_h: 3 pooled_w: 2 spatial_scale: 0.5 }", ("feat", "rois")), "rois"),
    "psroi_pooling": (dict(feat=(2, 12, 6, 9), rois=(6, 5)), layer(
        "PSROIPooling", "psroi_pooling_param { spatial_scale: 0.5 output_dim: 3 group_size: 2 }", ("feat", "rois")),
        "rois"),
}


@pytest.mark.parametrize("case", sorted(AGREE))
def test_opencv_agrees(tmp_path, case):
    shapes, text, rois = AGREE[case]
    inputs = None
    if rois:
        inputs = {"feat": np.random.default_rng(3).standard_normal(shapes["feat"]).astype(F), "rois": ROIS}
    cv, ref = opencv_and_numpy(tmp_path, inputs_text(**shapes) + text, inputs)
    assert cv.shape == ref.shape
    np.testing.assert_allclose(cv, ref, rtol=0, atol=1e-5)


def test_opencv_axpy_swaps_x_and_y(tmp_path):
    # SENet's axpy_layer.cpp scales bottom[1] and adds bottom[2]; OpenCV scales bottom[2] instead.
    text = inputs_text(a=(1, 3, 1, 1), x=(1, 3, 4, 5), y=(1, 3, 4, 5)) + layer("Axpy", bottoms=("a", "x", "y"))
    rng = np.random.default_rng(0)
    inputs = {n: rng.standard_normal(s).astype(F) for n, s in (("a", (1, 3, 1, 1)), ("x", (1, 3, 4, 5)),
                                                               ("y", (1, 3, 4, 5)))}
    cv, ref = opencv_and_numpy(tmp_path, text, inputs)
    a, x, y = inputs["a"], inputs["x"], inputs["y"]
    np.testing.assert_allclose(ref, a * x + y, atol=1e-6)
    np.testing.assert_allclose(cv, a * y + x, atol=1e-6)
    assert np.abs(cv - ref).max() > 0.1


def test_opencv_interp_ignores_shrink_when_zoom_is_given(tmp_path):
    # interp_layer.cpp: shrink then zoom, (5-1)/2+1 = 3 -> 3 + 2*2 = 7; OpenCV zooms the whole input: 13.
    text = inputs_text(data=(1, 2, 5, 7)) + layer("Interp", "interp_param { shrink_factor: 2 zoom_factor: 3 }")
    cv, ref = opencv_and_numpy(tmp_path, text)
    assert ref.shape == (1, 2, 7, 10) and cv.shape == (1, 2, 13, 19)


def test_opencv_interp_ignores_pads(tmp_path):
    # pad_beg/pad_end -1 crop one row/column each side first (4x4 -> 2x2 -> zoom 2 -> 3x3); OpenCV
    # zooms the uncropped 4x4 to 7x7, whose every other sample is the input itself.
    x = ramp(1, 1, 4, 4)
    text = inputs_text(data=(1, 1, 4, 4)) + layer("Interp", "interp_param { zoom_factor: 2 pad_beg: -1 pad_end: -1 }")
    cv, ref = opencv_and_numpy(tmp_path, text, {"data": x})
    np.testing.assert_allclose(ref[0, 0], F([[5, 5.5, 6], [7, 7.5, 8], [9, 9.5, 10]]))
    assert cv.shape == (1, 1, 7, 7)
    np.testing.assert_allclose(cv[0, 0, ::2, ::2], x[0, 0], atol=1e-6)


@pytest.mark.parametrize("net", ["shufflenet", "faster_rcnn", "rfcn"])
def test_validate_cli_with_opencv_reference(tmp_path, capsys, net):
    """`caffe2onnx validate --reference opencv` on the whole fork nets: exit 0, every blob compared."""
    import fork_nets
    from caffe2onnx.caffemodel_writer import write_net_weights
    from caffe2onnx.cli import main
    from caffe2onnx.converter import convert_file
    from test_fork_nets import ROIS
    import caffe2onnx
    text = fork_nets.shufflenet() if net == "shufflenet" else getattr(fork_nets, net)(len(ROIS))
    proto, weights, onnx_path = tmp_path / "n.prototxt", tmp_path / "n.caffemodel", tmp_path / "n.onnx"
    proto.write_text(text)
    write_net_weights(weights, caffe2onnx.load(proto, random_weights=0))
    convert_file(onnx_path, proto, weights)
    args = ["validate", str(proto), str(weights), str(onnx_path), "--reference", "opencv", "--layers"]
    if net != "shufflenet":  # valid ROIs, as a Proposal layer would give
        np.save(tmp_path / "rois.npy", ROIS)
        args += ["--input", f"rois={tmp_path / 'rois.npy'}"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "0 fail" in out and ("ShuffleChannel" in out or "ROIPooling" in out or "PSROIPooling" in out)
