"""The built-in NumPy reference (caffe2onnx.validators.numpy_ref) against real Caffe.

Layer cases are grouped: one net per group holds many independent single-layer
cases (each with its own inputs), so one real-Caffe run checks them all and
every tensor is compared.
"""
from __future__ import annotations

import re
import time
from pathlib import Path

import numpy as np
import pytest

import caffe2onnx
from caffe2onnx.caffemodel_writer import write_caffemodel, write_net_weights
from caffe2onnx.errors import Caffe2OnnxError, UnsupportedLayerError, WeightMismatchError
from caffe2onnx.layers import SPECS
from caffe2onnx.validators.caffe_reference import blobs_for_net, caffe_available, run_caffe
from caffe2onnx.validators.numpy_ref import FORWARDS, ForwardRegistry, run_numpy
from harness import corpus, reference

_CONV, _POOL, _LRN = "Convolution", "Pooling", "LRN"
X4, X3 = (2, 3, 5, 6), (2, 3, 4)


def c(shapes, type_: str, param: str = "", bottoms=None, tops=("o0",)):
    """One case: input shapes, a layer type and its param text; bottoms default to all inputs."""
    return shapes, type_, param, bottoms or tuple(f"i{k}" for k in range(len(shapes))), tops


def _p(type_: str, body: str) -> str:
    return f"{SPECS.get(type_).param} {{ {body} }}"


def cv(shape, body, type_=_CONV, **kw):
    return c([shape], type_, _p(type_, body), **kw)


GROUPS: dict[str, tuple[float, dict]] = {  # group: (input scale, {case: spec})
    "vision": (1.0, {
        "conv": cv((2, 3, 7, 8), "num_output: 4 kernel_size: 3"),
        "conv_group_stride_pad": cv((1, 4, 9, 7), "num_output: 6 kernel_size: 3 stride: 2 pad: 1 group: 2"),
        "conv_rect_dilated": cv((1, 2, 11, 10), "num_output: 3 kernel_h: 3 kernel_w: 2 stride_h: 2 stride_w: 1 "
                                                "pad_h: 2 pad_w: 1 dilation: 2"),
        "conv_1x1_nobias": cv((2, 5, 4, 3), "num_output: 3 kernel_size: 1 bias_term: false"),
        "conv_3d": cv((1, 2, 4, 5, 6), "num_output: 2 kernel_size: 3 pad: 1 stride: 2"),
        "conv_two_bottoms": c([X4, X4], _CONV, _p(_CONV, "num_output: 2 kernel_size: 2"), tops=("o0", "o1")),
        "deconv": cv((2, 3, 4, 5), "num_output: 2 kernel_size: 3", "Deconvolution"),
        "deconv_group_stride_pad": cv((1, 4, 5, 4), "num_output: 6 kernel_size: 4 stride: 2 pad: 1 group: 2",
                                      "Deconvolution"),
        "deconv_rect_dilated": cv((1, 2, 4, 5), "num_output: 3 kernel_h: 3 kernel_w: 2 stride_h: 2 stride_w: 3 "
                                                "dilation: 2 bias_term: false", "Deconvolution"),
        "deconv_1d": cv((2, 3, 6), "num_output: 2 kernel_size: 3 stride: 2", "Deconvolution"),
        "max_ceil": cv((2, 3, 8, 8), "pool: MAX kernel_size: 3 stride: 2", _POOL),
        "ave_ceil_pad": cv((1, 2, 8, 9), "pool: AVE kernel_size: 3 stride: 2 pad: 1", _POOL),
        "ave_last_window_dropped": cv((1, 2, 4, 4), "pool: AVE kernel_size: 3 stride: 3 pad: 2", _POOL),
        "max_rect": cv((2, 2, 9, 8), "pool: MAX kernel_h: 3 kernel_w: 2 stride_h: 2 stride_w: 1 pad_h: 1 "
                                          "pad_w: 0", _POOL),
        "ave_floor_pad": cv((1, 2, 8, 8), "pool: AVE kernel_size: 3 stride: 2 pad: 1 ceil_mode: false", _POOL),
        "max_floor": cv((1, 2, 8, 7), "pool: MAX kernel_size: 2 stride: 3 ceil_mode: false", _POOL),
        "ave_global": cv((2, 3, 5, 7), "pool: AVE global_pooling: true", _POOL),
        "max_global": cv((2, 3, 5, 7), "pool: MAX global_pooling: true", _POOL),
        "ave_empty_windows": cv((1, 2, 6, 6), "pool: AVE kernel_size: 2 stride: 3", _POOL),  # 0/0: NaN
        "max_empty_windows": cv((1, 2, 6, 6), "pool: MAX kernel_size: 2 stride: 3", _POOL),  # -FLT_MAX
        "lrn": cv((2, 7, 4, 5), "local_size: 5 alpha: 0.5 beta: 0.75", _LRN),
        "lrn_k": cv((1, 4, 3, 3), "local_size: 3 alpha: 2 beta: 0.5 k: 2", _LRN),
        "lrn_within": cv((2, 3, 6, 7), "local_size: 3 alpha: 1.5 beta: 0.75 norm_region: WITHIN_CHANNEL", _LRN),
        "lrn_within_k": cv((1, 2, 7, 6), "local_size: 5 alpha: 3 beta: 0.6 k: 4 norm_region: WITHIN_CHANNEL", _LRN),
    }),
    "common": (1.0, {
        "ip": cv(X4, "num_output: 6", "InnerProduct"),
        "ip_axis2_transpose": cv(X4, "num_output: 4 axis: 2 transpose: true", "InnerProduct"),
        "ip_last_axis_nobias": cv(X3, "num_output: 3 axis: -1 bias_term: false", "InnerProduct"),
        "concat": c([X3, (2, 5, 4)], "Concat"),
        "concat_last": c([X3, (2, 3, 2), (2, 3, 1)], "Concat", _p("Concat", "axis: -1")),
        "slice": c([(2, 7, 3)], "Slice", _p("Slice", "slice_point: 2 slice_point: 5"), tops=("o0", "o1", "o2")),
        "slice_equal_axis0": c([(6, 2, 3)], "Slice", _p("Slice", "axis: 0"), tops=("o0", "o1", "o2")),
        "split": c([X3], "Split", tops=("o0", "o1")),
        "flatten": c([X4], "Flatten"),
        "flatten_mid": c([X4], "Flatten", _p("Flatten", "axis: 1 end_axis: 2")),
        "reshape": c([X4], "Reshape", _p("Reshape", "shape { dim: 0 dim: -1 dim: 2 }")),
        "reshape_axis": c([X4], "Reshape", _p("Reshape", "shape { dim: 1 dim: -1 } axis: 2 num_axes: 1")),
        "sum": c([X3, X3], "Eltwise"),
        "sum_coeff": c([X3] * 3, "Eltwise", _p("Eltwise", "coeff: 1.5 coeff: -2 coeff: 0.5")),
        "prod": c([X3] * 3, "Eltwise", _p("Eltwise", "operation: PROD")),
        "max": c([X3] * 3, "Eltwise", _p("Eltwise", "operation: MAX")),
        "sum_in_place_first": c([X3] * 2, "Eltwise", _p("Eltwise", "coeff: 2 coeff: -1"), tops=("i0",)),
        "prod_in_place": c([X3] * 3, "Eltwise", _p("Eltwise", "operation: PROD"), tops=("i0",)),
        "max_in_place": c([X3] * 3, "Eltwise", _p("Eltwise", "operation: MAX"), tops=("i0",)),
        "softmax": c([(2, 5, 3)], "Softmax"),
        "softmax_axis2": c([X4], "Softmax", _p("Softmax", "axis: 2")),
        "softmax_last": c([(3, 6)], "Softmax", _p("Softmax", "axis: -1")),
        "crop": c([(2, 3, 8, 9), (2, 3, 5, 6)], "Crop", _p("Crop", "axis: 2 offset: 1 offset: 2")),
        "crop_axis1": c([(2, 3, 8, 9), (2, 2, 5, 6)], "Crop", _p("Crop", "axis: 1 offset: 1")),
        "permute": c([X4], "Permute", _p("Permute", "order: 0 order: 2 order: 3 order: 1")),
        "permute_partial": c([X4], "Permute", _p("Permute", "order: 1 order: 0")),
    }),
    "activation": (2.0, {
        "relu": c([X4], "ReLU"),
        "relu_leaky_in_place": c([X4], "ReLU", _p("ReLU", "negative_slope: 0.2"), tops=("i0",)),
        "sigmoid": c([X4], "Sigmoid"), "tanh": c([X4], "TanH"), "absval": c([X4], "AbsVal"),
        "bnll": c([X4], "BNLL"), "dropout": c([X4], "Dropout", _p("Dropout", "dropout_ratio: 0.3")),
        "elu": c([X4], "ELU", _p("ELU", "alpha: 0.7")),
        "power": c([X4], "Power", _p("Power", "power: 2 scale: 0.5 shift: 1")),
        "power_sqrt": c([X4], "Power", _p("Power", "power: 0.5 scale: 0.1 shift: 1")),
        "power_zero": c([X4], "Power", _p("Power", "power: 0 scale: 2")),
        "power_scale0": c([X4], "Power", _p("Power", "power: 3 scale: 0 shift: 2")),
        "exp": c([X4], "Exp"),
        "exp_base2": c([X4], "Exp", _p("Exp", "base: 2 scale: 0.5 shift: 1")),
        "exp_e_shift": c([X4], "Exp", _p("Exp", "scale: 0.25 shift: 0.5")),
        "log": c([X4], "Log", _p("Log", "shift: 10")),
        "log_base10": c([X4], "Log", _p("Log", "base: 10 scale: 2 shift: 12")),
        "threshold": c([X4], "Threshold", _p("Threshold", "threshold: 0.3")),
        "prelu": c([X4], "PReLU"), "prelu_2d": c([(4, 5)], "PReLU"),
        "prelu_shared": c([X4], "PReLU", _p("PReLU", "channel_shared: true")),
    }),
    "normalization": (1.0, {
        "bn": c([X4], "BatchNorm"), "bn_2d": c([(4, 3)], "BatchNorm", _p("BatchNorm", "eps: 0.001")),
        "bn_batch_stats": c([X4], "BatchNorm", _p("BatchNorm", "use_global_stats: false")),
        "bn_batch_stats_3d": c([(3, 2, 7)], "BatchNorm", _p("BatchNorm", "use_global_stats: false eps: 0.1")),
        "scale": c([X4], "Scale"), "scale_bias": c([X4], "Scale", _p("Scale", "bias_term: true")),
        "scale_axis2_two_axes": c([X4], "Scale", _p("Scale", "axis: 2 num_axes: 2")),
        "scale_scalar": c([X4], "Scale", _p("Scale", "num_axes: 0 bias_term: true")),
        "scale_bottom": c([X4, (3, 5)], "Scale"),
        "scale_bottom_bias": c([X4, (2, 3)], "Scale", _p("Scale", "axis: 0 bias_term: true")),
        "bias": c([X4], "Bias"), "bias_last_axes": c([X4], "Bias", _p("Bias", "axis: -2")),
        "bias_bottom": c([X4, (5, 6)], "Bias", _p("Bias", "axis: 2")),
        "mvn": c([X4], "MVN"), "mvn_across": c([X4], "MVN", _p("MVN", "across_channels: true")),
        "mvn_mean_only": c([X4], "MVN", _p("MVN", "normalize_variance: false")),
        "mvn_3d_top_4d": c([X3], "MVN"), "mvn_2d_across": c([(3, 4)], "MVN", _p("MVN", "across_channels: true")),
        "mvn_in_place": c([X4], "MVN", tops=("i0",)),
    }),
    "small_inputs": (0.01, {  # eps matters only when the spread is small
        "mvn_eps_on_std": c([X4], "MVN", _p("MVN", "eps: 0.01")),
        "bn_batch_eps": c([X4], "BatchNorm", _p("BatchNorm", "use_global_stats: false eps: 0.0001")),
    }),
}


def group_net(cases: dict) -> str:
    """One net: every case gets its own Input blobs (prefixed with the case name) and one layer."""
    out = []
    for name, (shapes, type_, param, bottoms, tops) in cases.items():
        for k, shape in enumerate(shapes):
            dims = " ".join(f"dim: {d}" for d in shape)
            out.append(f'layer {{ name: "{name}_in{k}" type: "Input" top: "{name}_i{k}" '
                       f'input_param {{ shape {{ {dims} }} }} }}')
        io = " ".join([f'bottom: "{name}_{b}"' for b in bottoms] + [f'top: "{name}_{t}"' for t in tops])
        out.append(f'layer {{ name: "{name}" type: "{type_}" {io} {param} }}')
    return "\n".join(out) + "\n"


def assert_matches(got: dict, want: dict, net, max_abs: float = 1e-4, mean_abs: float = 1e-5,
                   relative: bool = False) -> dict[str, float]:
    """Every tensor present, same non-finite pattern, finite values within tolerance; returns max diffs."""
    assert set(want) == set(net.tensors), f"Caffe blobs missing for {sorted(set(net.tensors) - set(want))}"
    diffs, failures = {}, []
    for name, b in want.items():
        a = np.asarray(got[name])
        assert a.shape == b.shape, f"{name}: shape {a.shape} vs Caffe {b.shape}"
        np.testing.assert_array_equal(np.where(np.isfinite(a), 0, a), np.where(np.isfinite(b), 0, b),
                                      err_msg=f"{name}: non-finite values differ")
        d = np.abs(np.where(np.isfinite(a), a, 0).astype(np.float64) - np.where(np.isfinite(b), b, 0))
        scale = max(float(np.abs(np.where(np.isfinite(b), b, 0)).max(initial=0)), 1e-30) if relative else 1.0
        diffs[name] = float(d.max(initial=0)) / scale
        if diffs[name] > max_abs or float(d.mean()) / scale > mean_abs:
            failures.append(f"{name}: max diff {diffs[name]:.3g}, mean {float(d.mean()) / scale:.3g}")
    assert not failures, "NumPy reference differs from real Caffe:\n" + "\n".join(failures)
    return diffs


@pytest.mark.parametrize("group", sorted(GROUPS))
def test_layers_against_caffe(tmp_path, group):
    scale, cases = GROUPS[group]
    net_path, model_path, ref = reference(tmp_path, f"numpy_ref_{group}", group_net(cases), {}, input_scale=scale)
    net = caffe2onnx.load(net_path, model_path)
    assert_matches(run_numpy(net, ref.inputs), ref.blobs, net)


@pytest.mark.parametrize("factor", [0.5, 0.0, 1000.0])
def test_batch_norm_stored_statistics_factor(tmp_path, factor):
    """Caffe divides the stored mean and variance by blob 2 (a factor 0 zeroes them)."""
    if not caffe_available():
        pytest.skip("real Caffe (pycaffe) is not installed")
    (tmp_path / "n.prototxt").write_text(group_net({"bn": c([X4], "BatchNorm", _p("BatchNorm", "eps: 0.01"))}))
    rng = np.random.default_rng(3)
    blobs = [rng.normal(0, 1, 3).astype(np.float32) * max(factor, 1), rng.uniform(0.5, 2, 3).astype(np.float32)
             * max(factor, 1), np.array([factor], np.float32)]
    write_caffemodel(tmp_path / "n.caffemodel", [("bn", "BatchNorm", blobs)])
    net = caffe2onnx.load(tmp_path / "n.prototxt", tmp_path / "n.caffemodel")
    inputs = {"bn_i0": rng.standard_normal(X4).astype(np.float32)}
    want = blobs_for_net(net, run_caffe(tmp_path / "n.prototxt", tmp_path / "n.caffemodel", inputs))
    assert_matches(run_numpy(net, inputs), want, net)


CORPUS_CASES = ["convolution", "inner_product", "lrn_channels", "mvn", "pooling_max", "softmax"]


@pytest.mark.parametrize("case", CORPUS_CASES)
def test_corpus_layer_cases(case):
    """OpenCV's single-layer nets with the output real Caffe computed (no live Caffe needed)."""
    proto = corpus(f"caffe_layer_cases/layer_{case}.prototxt")
    model = proto.with_suffix(".caffemodel")
    net = caffe2onnx.load(proto, model if model.exists() else None)
    blob = np.load(corpus("caffe_layer_cases/blob.npy"))
    want = np.load(corpus(f"caffe_layer_cases/layer_{case}.npy"))
    got = run_numpy(net, {"input": blob})["output"]
    assert got.shape == want.shape
    d = np.abs(got.astype(np.float64) - want)
    assert d.max() <= 1e-4 and d.mean() <= 1e-5, f"max {d.max():.3g}, mean {d.mean():.3g}"


def test_corpus_reshape_and_slice_routines():
    """Split/Slice/Concat/Reshape/Flatten that must give back the input exactly."""
    proto = corpus("caffe_layer_cases/reshape_and_slice_routines.prototxt")
    blob = np.load(corpus("caffe_layer_cases/blob.npy"))
    net = caffe2onnx.load(proto, input_shapes={"input": blob.shape})
    out = run_numpy(net, {"input": blob})["output"]
    assert out.shape == (blob.shape[0], blob[0].size)  # the final Flatten keeps the data, not the shape
    np.testing.assert_array_equal(out.reshape(blob.shape), blob)


def test_googlenet_against_caffe(tmp_path):
    if not caffe_available():
        pytest.skip("real Caffe (pycaffe) is not installed")
    proto = corpus("bvlc_caffe/models/bvlc_googlenet/deploy.prototxt")
    net = caffe2onnx.load(proto, random_weights=0, input_shapes={"data": (1, 3, 224, 224)})
    write_net_weights(tmp_path / "g.caffemodel", net)
    inputs = {"data": np.random.default_rng(7).standard_normal((1, 3, 224, 224)).astype(np.float32)}
    want = blobs_for_net(net, run_caffe(proto, tmp_path / "g.caffemodel", inputs))
    start = time.perf_counter()
    got = run_numpy(net, inputs)
    seconds = time.perf_counter() - start
    diffs = assert_matches(got, want, net, max_abs=1e-4, mean_abs=1e-4, relative=True)
    assert float(np.abs(got["prob"] - want["prob"]).max()) <= 1e-5
    assert seconds < 20, f"GoogLeNet took {seconds:.1f} s"
    print(f"GoogLeNet NumPy forward {seconds:.2f} s; worst relative diff {max(diffs.values()):.2g}")


def test_registry_covers_every_spec_and_documents_it():
    # Filter's and Proposal's specs only refuse them at load (their output shapes depend on the data).
    assert set(FORWARDS.types()) == set(SPECS.types()) - {"Input", "Filter", "Proposal"}
    for t in FORWARDS.types():
        fn = FORWARDS.get(t).fn
        assert fn.__doc__ and len(fn.__doc__.strip().splitlines()) == 1, t


def test_reference_is_independent_of_onnx():
    root = Path(caffe2onnx.__file__).parent / "validators" / "numpy_ref"
    for path in root.glob("*.py"):
        assert not re.search(r"^\s*(import|from)\s+onnx", path.read_text(), re.M), path.name


def _net(tmp_path, text: str, **kw):
    (tmp_path / "n.prototxt").write_text(text)
    return caffe2onnx.load(tmp_path / "n.prototxt", **kw)


def test_run_numpy_errors(tmp_path):
    net = _net(tmp_path, group_net({"ip": cv(X3, "num_output: 2", "InnerProduct")}), random_weights=1)
    with pytest.raises(Caffe2OnnxError, match="no value for net input"):
        run_numpy(net, {})
    with pytest.raises(Caffe2OnnxError, match="has shape"):
        run_numpy(net, {"ip_i0": np.zeros((2, 3), np.float32)})
    with pytest.raises(UnsupportedLayerError, match="no NumPy forward"):
        run_numpy(net, {"ip_i0": np.zeros(X3, np.float32)}, registry=ForwardRegistry())
    with pytest.raises(WeightMismatchError, match="no weights bound"):
        run_numpy(_net(tmp_path, group_net({"ip": cv(X3, "num_output: 2", "InnerProduct")})),
                  {"ip_i0": np.zeros(X3, np.float32)})
    out = run_numpy(net, {"ip_i0": np.ones(X3)})
    assert set(out) == set(net.tensors) and all(v.dtype == np.float32 for v in out.values())
