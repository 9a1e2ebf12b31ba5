"""In-place layers (top == bottom): which the loader accepts, which it refuses, against real Caffe.

Only the types in IN_PLACE_SAFE may run in place: for them Caffe's in-place form computes what
the out-of-place form does (Eltwise: what its mapping models). Every other type is refused at
load, naming the layer, its type and "runs in place".
"""
from __future__ import annotations

import re

import numpy as np
import pytest

import caffe2onnx
from caffe2onnx.caffemodel_writer import write_caffemodel
from caffe2onnx.converter import DEFAULT_OPSET
from caffe2onnx.errors import NetStructureError, UnsupportedLayerError
from caffe2onnx.layers import SPECS
from caffe2onnx.layers.registry import IN_PLACE_SAFE
from loader_util import load_text
from caffe2onnx.validators.caffe_reference import CaffeRejected, blobs_for_net, run_caffe
from caffe2onnx.validators.numpy_ref import run_numpy
from harness import check_case, input_layer, live_caffe, onnx_blobs

X = (2, 3, 4, 5)


def _inputs(*shapes, prefix: str = "") -> str:
    return "".join(input_layer(s, f"{prefix}data{i or ''}").replace('name: "input"', f'name: "{prefix}input{i}"')
                   for i, s in enumerate(shapes))


def _layer(name: str, type_: str, bottoms, tops, param: str = "") -> str:
    io = " ".join([f'bottom: "{b}"' for b in bottoms] + [f'top: "{t}"' for t in tops])
    return f'layer {{ name: "{name}" type: "{type_}" {io} {param} }}\n'


# case -> (type, param text, extra input shapes (bottoms data1...), real Caffe's own refusal or None)
REFUSED = {
    "absval": ("AbsVal", "", (), "AbsVal Layer does not allow in-place computation"),
    "flatten": ("Flatten", "", (), "Flatten Layer does not allow in-place computation"),
    "reshape": ("Reshape", "reshape_param { shape { dim: 0 dim: -1 } }", (),
                "Reshape Layer does not allow in-place computation"),
    "split": ("Split", "", (), "Split Layer does not allow in-place computation"),
    "slice": ("Slice", "slice_param { slice_point: 1 }", (), r"Check failed: count == bottom\[0\]->count\(\)"),
    "conv_1x1": ("Convolution", "convolution_param { num_output: 3 kernel_size: 1 }", (), None),
    "conv_3x3": ("Convolution", "convolution_param { num_output: 3 kernel_size: 3 pad: 1 }", (), None),
    "deconv": ("Deconvolution", "convolution_param { num_output: 3 kernel_size: 3 pad: 1 }", (), None),
    "inner_product": ("InnerProduct", "inner_product_param { num_output: 5 axis: 3 }", (), None),
    "pool_max": ("Pooling", "pooling_param { pool: MAX kernel_size: 3 pad: 1 stride: 1 }", (), None),
    "pool_ave": ("Pooling", "pooling_param { pool: AVE kernel_size: 3 pad: 1 stride: 1 }", (), None),
    "lrn": ("LRN", "lrn_param { local_size: 3 }", (), None),
    "lrn_within": ("LRN", "lrn_param { local_size: 3 norm_region: WITHIN_CHANNEL }", (), None),
    "concat": ("Concat", "", (X,), None),
    "concat_one_bottom": ("Concat", "", (), None),
    "crop": ("Crop", "crop_param { axis: 2 }", ((2, 3, 2, 2),), None),
    "permute": ("Permute", "permute_param { order: 0 order: 2 order: 3 order: 1 }", (), None),
    "argmax": ("ArgMax", "", (), None),
    "reduction": ("Reduction", "reduction_param { axis: 1 }", (), None),
    "tile": ("Tile", "tile_param { tiles: 2 }", (), None),
    "embed": ("Embed", "embed_param { num_output: 2 input_dim: 3 }", (), None),
    "spp": ("SPP", "spp_param { pyramid_height: 2 }", (), None),
    "im2col": ("Im2col", "convolution_param { kernel_size: 1 }", (), None),
    "batch_reindex": ("BatchReindex", "", ((2,),), None),
    "filter": ("Filter", "", ((2, 1),), None),
    "clip": ("Clip", "clip_param { min: 0 max: 1 }", (), None),
    "swish": ("Swish", "", (), None),
    "lstm": ("LSTM", "recurrent_param { num_output: 2 }", ((2, 3),), None),
    "rnn": ("RNN", "recurrent_param { num_output: 2 }", ((2, 3),), None),
    "lstm_unit": ("LSTMUnit", "", ((2, 3), (2, 3)), None),
    "normalize": ("Normalize", "norm_param { across_spatial: false }", (), None),
    "prior_box": ("PriorBox", "prior_box_param { min_size: 2 }", (X,), None),
    "detection_output": ("DetectionOutput", "detection_output_param { num_classes: 2 }", ((2, 8), (1, 2, 16)), None),
    "unsqueeze": ("Unsqueeze", "unsqueeze_param { dim: 1 }", (), None),
    "pixelshuffle": ("PixelShuffle", "pixelshuffle_param { upscale_factor: 1 }", (), None),
    "pad": ("Pad", "pad_param { pad_u: 1 }", (), "Pad Layer does not allow in-place computation"),
    "max_unpool": ("MaxUnPool", "max_unpool_param { dst_h: 4 dst_w: 5 }", (X,), None),
    "upsample": ("Upsample", "upsample_param { scale: 1 }", (), None),
    "resize": ("Resize", "resize_param { height: 4 width: 5 }", (), None),
    "bilinear_interpolate": ("BilinearInterpolate", "bilinear_interpolate_param { dst_h: 4 dst_w: 5 }", (), None),
    "proposal": ("Proposal", "", (X, (1, 3)), None),
}


def _refused_net(case: str) -> str:
    type_, param, extra, _ = REFUSED[case]
    bottoms = ["data", *(f"data{i + 1}" for i in range(len(extra)))]
    tops = ["data", "second"] if type_ in ("Split", "Slice", "LSTMUnit") else ["data"]
    return _inputs(X, *extra) + _layer(case, type_, bottoms, tops, param)


def test_refused_cases_cover_every_type_outside_the_safe_list():
    from test_fork_fields import FORK_IN_PLACE_REFUSED  # the fork layers' cases live there
    covered = {REFUSED[c][0] for c in REFUSED} | set(FORK_IN_PLACE_REFUSED)
    assert covered == set(SPECS.types()) - IN_PLACE_SAFE - {"Input", "Parameter"}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_unsafe_type_in_place_is_refused(tmp_path, case):
    type_, _, extra, caffe_refusal = REFUSED[case]
    path = tmp_path / "net.prototxt"
    path.write_text(_refused_net(case))
    with pytest.raises(UnsupportedLayerError, match=rf"layer '{case}' \(type {type_}\): runs in place") as e:
        caffe2onnx.load(path)
    assert [(n, t) for n, t, _ in e.value.problems] == [(case, type_)]
    if caffe_refusal is not None and live_caffe():
        rng = np.random.default_rng(0)
        inputs = {n: rng.standard_normal(s).astype(np.float32)
                  for n, s in zip(["data", *(f"data{i + 1}" for i in range(len(extra)))], (X, *extra))}
        with pytest.raises(CaffeRejected) as rejected:
            run_caffe(path, None, inputs)
        assert re.search(caffe_refusal, rejected.value.log), rejected.value.log[-800:]


# case -> (type, param text, extra bottom shapes). Eltwise SUM and MAX in place read bottom 0
# as their fill value (tests/test_common.py checks that against Caffe); PROD reads it first.
SAFE = {
    "relu": ("ReLU", "relu_param { negative_slope: 0.1 }", ()),
    "sigmoid": ("Sigmoid", "", ()),
    "tanh": ("TanH", "", ()),
    "elu": ("ELU", "elu_param { alpha: 0.5 }", ()),
    "bnll": ("BNLL", "", ()),
    "power": ("Power", "power_param { power: 2 scale: 0.5 shift: 1 }", ()),
    "exp": ("Exp", "exp_param { base: 2 scale: 0.5 shift: 0.25 }", ()),
    "log": ("Log", "log_param { scale: 0.5 shift: 4 }", ()),
    "threshold": ("Threshold", "threshold_param { threshold: 0.2 }", ()),
    "dropout": ("Dropout", "dropout_param { dropout_ratio: 0.3 }", ()),
    "prelu": ("PReLU", "", ()),
    "batch_norm": ("BatchNorm", "", ()),
    "batch_norm_batch_stats": ("BatchNorm", "batch_norm_param { use_global_stats: false }", ()),
    "scale": ("Scale", "scale_param { bias_term: true }", ()),
    "scale_bottom": ("Scale", "", ((3, 4),)),
    "bias": ("Bias", "", ()),
    "mvn": ("MVN", "", ()),
    "mvn_across": ("MVN", "mvn_param { across_channels: true }", ()),
    "softmax": ("Softmax", "", ()),
    "softmax_axis2": ("Softmax", "softmax_param { axis: 2 }", ()),
    "eltwise_prod": ("Eltwise", "eltwise_param { operation: PROD }", (X,)),
    "relu6": ("ReLU6", "relu6_param { negative_slope: 0.1 threshold: 1 }", ()),
    "hardswish": ("HardSwish", "", ()),
    "hardsigmoid": ("HardSigmoid", "hardsigmoid_param { alpha: 0.3 }", ()),
    "batch_norm_kyle": ("BatchNormKyle", "batch_norm_param { use_global_stats: false use_alpha_beta: true }", ()),
}


def _safe_layers(case: str, prefix: str = "") -> str:
    """The case's layer run in place on a copy of data (an identity Power, its own memory in Caffe)
    and, with the same weights, out of place on data itself."""
    type_, param, extra = SAFE[case]
    extra_bottoms = [f"{prefix}data{i + 1}" for i in range(len(extra))]
    return (_layer(f"{prefix}copy", "Power", [f"{prefix}data"], [f"{prefix}a"])
            + _layer(f"{prefix}in_place", type_, [f"{prefix}a", *extra_bottoms], [f"{prefix}a"], param)
            + _layer(f"{prefix}out_of_place", type_, [f"{prefix}data", *extra_bottoms], [f"{prefix}ref"], param))


def _same_weights(prefixes):
    def tweak(weights):
        for p in prefixes:
            if f"{p}in_place" in weights:
                weights[f"{p}out_of_place"] = [w.copy() for w in weights[f"{p}in_place"]]
    return tweak


def test_safe_cases_cover_the_safe_list():
    from test_fork_fields import FORK_IN_PLACE_SAFE  # fork types real Caffe lacks are checked there
    assert {SAFE[c][0] for c in SAFE} | FORK_IN_PLACE_SAFE == set(IN_PLACE_SAFE)


@pytest.mark.parametrize("case", sorted(SAFE))
def test_safe_type_in_place_matches_caffe(tmp_path, case):
    """ONNX (every opset) and the NumPy reference against real Caffe, every tensor."""
    text = _inputs(X, *SAFE[case][2]) + _safe_layers(case)
    check_case(tmp_path, f"in_place_{case}", text, {}, tweak_weights=_same_weights([""]))


def _tensor(net, layer: str) -> str:
    return next(n for n, t in net.tensors.items() if t.producer == layer)


def test_safe_types_in_place_equal_out_of_place(tmp_path):
    """In real Caffe, in ONNX and in the NumPy reference, the in-place top equals the out-of-place one."""
    if not live_caffe():
        pytest.skip("real Caffe (pycaffe) is not installed")
    text = "".join(_inputs(X, *SAFE[c][2], prefix=f"{c}_") + _safe_layers(c, f"{c}_") for c in sorted(SAFE))
    (tmp_path / "n.prototxt").write_text(text)
    net = caffe2onnx.load(tmp_path / "n.prototxt", random_weights=0)
    weights = {l.name: list(l.weights) for l in net.layers if l.weights}
    _same_weights([f"{c}_" for c in SAFE])(weights)
    write_caffemodel(tmp_path / "n.caffemodel", [(l.name, l.type, weights.get(l.name, [])) for l in net.layers])
    net = caffe2onnx.load(tmp_path / "n.prototxt", tmp_path / "n.caffemodel")
    rng = np.random.default_rng(1)
    inputs = {n: rng.standard_normal(net.shape(n)).astype(np.float32) for n in net.inputs}
    results = {"Caffe": blobs_for_net(net, run_caffe(tmp_path / "n.prototxt", tmp_path / "n.caffemodel", inputs)),
               "ONNX": onnx_blobs(net, DEFAULT_OPSET, inputs), "NumPy": run_numpy(net, inputs)}
    for what, blobs in results.items():
        for c in SAFE:
            got, want = blobs[_tensor(net, f"{c}_in_place")], blobs[_tensor(net, f"{c}_out_of_place")]
            np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6, err_msg=f"{what}: {c}")


def _write(tmp_path, text: str):
    path = tmp_path / "net.prototxt"
    path.write_text(text)
    return path


@pytest.mark.parametrize("layers", [
    # a reads data, then t overwrites the same data in place
    _layer("a", "ReLU", ["data"], ["a"]) + _layer("t", "TanH", ["data"], ["data"]),
    # in place over a blob it also reads as a second bottom
    _layer("t", "Eltwise", ["data", "data"], ["data"], "eltwise_param { operation: PROD }"),
], ids=["other_reader", "read_twice"])
def test_in_place_over_a_value_others_read_is_refused(tmp_path, layers):
    path = _write(tmp_path, _inputs(X) + layers)
    with pytest.raises(NetStructureError, match=r"layer 't' \(type \w+\) overwrites blob 'data' in place.*"
                                                r"produced by multiple sources"):
        caffe2onnx.load(path)
    if live_caffe():
        with pytest.raises(CaffeRejected) as rejected:
            run_caffe(path, None, {"data": np.ones(X, np.float32)})
        assert "Top blob 'data' produced by multiple sources" in rejected.value.log


def test_readers_of_the_overwritten_value_are_fine(tmp_path):
    """In place first, then read by two layers: each value has one in-place reader at most."""
    text = _inputs(X) + (_layer("t", "TanH", ["data"], ["data"]) + _layer("r", "ReLU", ["data"], ["data"])
                         + _layer("s", "Sigmoid", ["data"], ["s"]) + _layer("p", "Power", ["data"], ["p"],
                                                                          "power_param { scale: 2 }"))
    check_case(tmp_path, "in_place_then_readers", text, {})


ALIASING = {
    "split": 'layer { name: "al" type: "Split" bottom: "data" top: "f" }\n',
    "flatten": 'layer { name: "al" type: "Flatten" bottom: "data" top: "f" }\n',
    "reshape": 'layer { name: "al" type: "Reshape" bottom: "data" top: "f" reshape_param { shape { dim: 0 dim: -1 } } }\n',
    "concat_one": 'layer { name: "al" type: "Concat" bottom: "data" top: "f" }\n',
}


@pytest.mark.parametrize("case", sorted(ALIASING))
def test_in_place_over_memory_shared_with_a_later_reader_is_rejected(tmp_path, case):
    """Caffe aliases these tops to their bottom: a later ReLU in place on the top also changes data."""
    text = ('layer { name: "in" type: "Input" top: "data" input_param { shape { dim: 2 dim: 3 dim: 2 dim: 2 } } }\n'
            + ALIASING[case]
            + 'layer { name: "r" type: "ReLU" bottom: "f" top: "f" }\n'
            + 'layer { name: "t" type: "TanH" bottom: "data" top: "t" }\n')
    with pytest.raises(NetStructureError, match=r"layer 'r' \(type ReLU\) overwrites blob 'f' in place.*shared with blob\(s\) \['data'"):
        load_text(tmp_path, text)
    ok = text.replace('bottom: "data" top: "t"', 'bottom: "f" top: "t"')  # reading the result itself is fine
    load_text(tmp_path, ok)
