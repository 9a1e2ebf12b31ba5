"""Whole nets of each fork family (tests/fork_nets.py), every blob compared.

ShuffleNet and MobileNetV2 are judged by real Caffe (or its golden file) running their
exact BVLC form; PSPNet, Faster R-CNN and R-FCN have layers real Caffe lacks (or cannot run
on CPU) and are judged by the NumPy reference, with OpenCV as a second check where it
has every layer (it has no BN).
"""
from __future__ import annotations

import numpy as np
import pytest

import fork_nets
from caffe2onnx.validators.numpy_ref import run_numpy
from caffe2onnx.validators.references import OpenCVReference, opencv_module
from harness import assert_close, max_opset, onnx_blobs, reference
from test_fork_layers import F, fork_net

OPSETS = sorted({11, max_opset()})
# (batch index, x1, y1, x2, y2) in image pixels of the 64x64 input, as Proposal would give
ROIS = F([[0, 0, 0, 63, 63], [0, 8.5, 4.5, 40, 30], [0, 20, 20, 27.5, 60], [0, 50, 50, 51, 52],
          [0, -6, 10, 30, 70], [0, 33, 2, 12.5, 9]])


@pytest.mark.parametrize("name", ["shufflenet", "mobilenet_v2"])
def test_net_against_real_caffe_bvlc_form(tmp_path, name):
    build = getattr(fork_nets, name)
    (tmp_path / "bvlc").mkdir()
    (tmp_path / "fork").mkdir()
    _, _, ref = reference(tmp_path / "bvlc", f"fork_net_{name}", build(bvlc=True), {})
    _, _, net = fork_net(tmp_path / "fork", build(), ref.weights)
    common = [t for t in net.tensors if t in ref.blobs]
    assert set(net.outputs) <= set(common) and len(common) > 20
    for opset in OPSETS:
        assert_close(onnx_blobs(net, opset, ref.inputs), ref.blobs, common, max_abs=1e-4, relative=True)
    assert_close(run_numpy(net, ref.inputs), ref.blobs, common, max_abs=1e-4, relative=True, what="NumPy reference")


def _pspnet_weights(net) -> dict:
    rng = np.random.default_rng(7)
    out = {}
    for layer in net.layers:
        if layer.type == "BN":  # slope, bias, mean, positive var
            c = layer.weight_shapes[0]
            out[layer.name] = [rng.uniform(0.5, 1.5, c), rng.normal(0, 0.2, c), rng.normal(0, 0.2, c),
                               rng.uniform(0.5, 2, c)]
    return out


NETS = {  # name -> (prototxt, inputs)
    "pspnet": (fork_nets.pspnet(), None),
    "faster_rcnn": (fork_nets.faster_rcnn(len(ROIS)), {"rois": ROIS}),
    "rfcn": (fork_nets.rfcn(len(ROIS)), {"rois": ROIS}),
}


@pytest.mark.parametrize("name", sorted(NETS))
def test_net_against_numpy_reference_and_opencv(tmp_path, name):
    text, extra = NETS[name]
    path = tmp_path / "seed.prototxt"
    path.write_text(text)
    import caffe2onnx
    weights = _pspnet_weights(caffe2onnx.load(path, random_weights=0))
    path, model, net = fork_net(tmp_path, text, weights)
    rng = np.random.default_rng(1)
    inputs = {"data": rng.standard_normal(net.shape("data")).astype(F), **(extra or {})}
    ref = run_numpy(net, inputs)
    assert all(np.isfinite(v).all() for v in ref.values())
    for opset in OPSETS:
        assert_close(onnx_blobs(net, opset, inputs), ref, net.tensors, max_abs=1e-4, relative=True,
                     what=f"ONNX opset {opset} vs NumPy reference")
    if name != "pspnet" and opencv_module() is not None:  # OpenCV has no BN
        cv = OpenCVReference().run(net, path, model, inputs)
        names = [t for t in net.tensors if t in cv and cv[t].shape == ref[t].shape]
        assert set(net.outputs) <= set(names)
        assert_close(cv, ref, names, max_abs=1e-4, relative=True, what="OpenCV vs NumPy reference")
