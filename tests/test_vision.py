"""Convolution, Deconvolution, Pooling and LRN against real Caffe, at every opset in OPSETS."""
import numpy as np
import pytest

import caffe2onnx
from caffe2onnx.converter import build_model
from caffe2onnx.errors import UnsupportedLayerError
from harness import OPSETS, assert_close, check_case, input_layer, onnx_blobs, reference


def _layer(type_: str, param: str, body: str, bottoms=("data",), tops=("out",)) -> str:
    io = " ".join(f'bottom: "{b}"' for b in bottoms) + " " + " ".join(f'top: "{t}"' for t in tops)
    return f'layer {{ name: "l" type: "{type_}" {io} {param} {{ {body} }} }}\n'


# name: (input shape, convolution_param body)
CONV = {
    "basic": ((2, 3, 7, 9), "num_output: 4 kernel_size: 3"),
    "no_bias_pad": ((1, 3, 6, 5), "num_output: 5 kernel_size: 3 pad: 1 bias_term: false"),
    "stride_pad": ((2, 3, 8, 11), "num_output: 4 kernel_size: 3 stride: 2 pad: 1"),
    "rect_hw": ((1, 2, 9, 10), "num_output: 3 kernel_h: 2 kernel_w: 4 stride_h: 1 stride_w: 3 pad_h: 1 pad_w: 0"),
    "per_axis_lists": ((1, 2, 9, 7), "num_output: 3 kernel_size: 3 kernel_size: 1 stride: 2 stride: 1 pad: 0 pad: 2"),
    "dilation": ((2, 2, 9, 9), "num_output: 3 kernel_size: 3 dilation: 2 pad: 2"),
    "dilation_per_axis": ((1, 2, 10, 11), "num_output: 2 kernel_size: 3 dilation: 2 dilation: 3 stride: 2"),
    "group": ((2, 6, 6, 7), "num_output: 9 kernel_size: 3 group: 3 pad: 1"),
    "depthwise": ((1, 4, 7, 6), "num_output: 4 kernel_size: 3 group: 4 stride: 2 pad: 1"),
    "depthwise_mult": ((1, 4, 5, 5), "num_output: 8 kernel_size: 3 group: 4"),
    "pad_ge_kernel": ((1, 2, 4, 5), "num_output: 3 kernel_size: 2 pad: 3"),
    "kernel_1x1": ((3, 5, 4, 3), "num_output: 7 kernel_size: 1"),
    "spatial_1x1": ((3, 2, 1, 1), "num_output: 3 kernel_size: 1"),
    "kernel_eq_input": ((2, 3, 3, 3), "num_output: 2 kernel_size: 3"),
    "small_input_pad": ((1, 2, 2, 2), "num_output: 2 kernel_size: 3 pad: 1 stride: 2"),
    "conv1d": ((2, 3, 10), "num_output: 4 kernel_size: 3 stride: 2 pad: 1"),
    "conv3d": ((1, 2, 4, 5, 6), "num_output: 3 kernel_size: 2 kernel_size: 3 kernel_size: 1 stride: 1 stride: 2 "
                                "stride: 1 pad: 1 pad: 0 pad: 1 dilation: 2 dilation: 1 dilation: 1"),
}

DECONV = {
    "basic": ((2, 3, 4, 5), "num_output: 4 kernel_size: 3"),
    "stride2_k4_p1": ((1, 3, 5, 4), "num_output: 2 kernel_size: 4 stride: 2 pad: 1"),
    "stride2_k3_p1": ((2, 2, 3, 4), "num_output: 3 kernel_size: 3 stride: 2 pad: 1"),
    "group": ((1, 4, 3, 5), "num_output: 6 kernel_size: 3 stride: 2 group: 2"),
    "depthwise": ((2, 3, 4, 4), "num_output: 3 kernel_size: 4 stride: 2 pad: 1 group: 3 bias_term: false"),
    "dilation": ((1, 2, 4, 5), "num_output: 3 kernel_size: 3 dilation: 2 stride: 2"),
    "rect_hw": ((1, 2, 4, 3), "num_output: 2 kernel_h: 3 kernel_w: 2 stride_h: 2 stride_w: 3 pad_h: 1 pad_w: 0"),
    "shrinking_pad": ((1, 2, 6, 7), "num_output: 2 kernel_size: 5 pad: 2"),
    "stride_gt_kernel": ((1, 2, 3, 3), "num_output: 2 kernel_size: 2 stride: 3"),
    "spatial_1x1": ((3, 4, 1, 1), "num_output: 5 kernel_size: 3 stride: 2"),
    "deconv1d": ((2, 3, 6), "num_output: 2 kernel_size: 3 stride: 2 pad: 1"),
    "deconv3d": ((1, 2, 3, 4, 3), "num_output: 2 kernel_size: 2 stride: 2 stride: 1 stride: 2 pad: 0 pad: 1 pad: 0"),
}


@pytest.mark.parametrize("case", sorted(CONV))
def test_convolution(tmp_path, case):
    shape, body = CONV[case]
    check_case(tmp_path, f"vision_conv_{case}", input_layer(shape) + _layer("Convolution", "convolution_param", body), {})


@pytest.mark.parametrize("case", sorted(DECONV))
def test_deconvolution(tmp_path, case):
    shape, body = DECONV[case]
    text = input_layer(shape) + _layer("Deconvolution", "convolution_param", body)
    check_case(tmp_path, f"vision_deconv_{case}", text, {})


@pytest.mark.parametrize("type_", ["Convolution", "Deconvolution"])
def test_shared_weights_multiple_bottoms(tmp_path, type_):
    text = (input_layer((2, 4, 5, 6), "a") + input_layer((2, 4, 5, 6), "b").replace('"input"', '"input_b"')
            + _layer(type_, "convolution_param", "num_output: 6 kernel_size: 3 stride: 2 group: 2",
                     bottoms=("a", "b"), tops=("ya", "yb")))
    check_case(tmp_path, f"vision_{type_.lower()}_two_bottoms", text, {})


def test_conv_per_axis_lists_must_agree(tmp_path):
    (tmp_path / "n.prototxt").write_text(input_layer((1, 2, 4, 5, 6)) + _layer(
        "Convolution", "convolution_param", "num_output: 2 kernel_size: 2 kernel_size: 3 kernel_size: 1 "
        "stride: 1 stride: 2"))
    with pytest.raises(UnsupportedLayerError, match="convolution_param.stride"):
        caffe2onnx.load(tmp_path / "n.prototxt")


# name: (input shape, pooling_param body)
POOL = {
    "ceil_overhang": ((2, 3, 8, 8), "kernel_size: 3 stride: 2"),
    "ceil_overhang_pad": ((1, 2, 8, 8), "kernel_size: 3 stride: 2 pad: 1"),
    "exact_fit_pad": ((1, 2, 7, 7), "kernel_size: 3 stride: 2 pad: 1"),
    "last_window_dropped": ((1, 2, 4, 4), "kernel_size: 3 stride: 3 pad: 2"),
    "last_window_dropped_k2": ((2, 2, 5, 5), "kernel_size: 2 stride: 2 pad: 1"),
    "stride1_pad": ((1, 3, 5, 6), "kernel_size: 3 stride: 1 pad: 1"),
    "stride1_nopad": ((1, 2, 5, 4), "kernel_size: 2"),
    "kernel_lt_stride": ((1, 2, 7, 7), "kernel_size: 2 stride: 3"),
    "kernel_lt_stride_pad": ((1, 2, 8, 9), "kernel_size: 2 stride: 3 pad: 1"),
    "rect_hw": ((2, 2, 9, 8), "kernel_h: 3 kernel_w: 2 stride_h: 2 stride_w: 1 pad_h: 1 pad_w: 0"),
    "rect_hw_ceil": ((1, 3, 7, 10), "kernel_h: 2 kernel_w: 4 stride_h: 3 stride_w: 2 pad_h: 1 pad_w: 2"),
    "input_1x1": ((2, 3, 1, 1), "kernel_size: 2 stride: 2"),
    "input_2x2_pad": ((1, 2, 2, 2), "kernel_size: 3 stride: 2 pad: 1"),
    "input_3x3": ((1, 2, 3, 3), "kernel_size: 3 stride: 2"),
    "input_3x2_pad": ((3, 1, 3, 2), "kernel_size: 2 stride: 2 pad: 1"),
    "global": ((2, 3, 5, 7), "global_pooling: true"),
    "floor": ((1, 2, 8, 8), "kernel_size: 3 stride: 2 ceil_mode: false"),
    "floor_pad": ((2, 2, 8, 7), "kernel_size: 3 stride: 2 pad: 1 ceil_mode: false"),
    "floor_kernel_lt_stride": ((1, 2, 8, 7), "kernel_size: 2 stride: 3 ceil_mode: false"),
}


@pytest.mark.parametrize("method", ["MAX", "AVE"])
@pytest.mark.parametrize("case", sorted(POOL))
def test_pooling(tmp_path, case, method):
    shape, body = POOL[case]
    text = input_layer(shape) + _layer("Pooling", "pooling_param", f"pool: {method} {body}")
    check_case(tmp_path, f"vision_pool_{method}_{case}", text, {})


@pytest.mark.parametrize("method", ["MAX", "AVE"])
@pytest.mark.parametrize("shape,body", [
    ((1, 2, 6, 6), "kernel_size: 2 stride: 3"),  # the last row/column of windows lies past the input
    ((2, 1, 5, 7), "kernel_size: 1 stride: 5"),
])
def test_pooling_empty_windows(tmp_path, method, shape, body):
    """Caffe keeps windows lying wholly past the input: MAX gives -FLT_MAX there, AVE 0/count (NaN or -0)."""
    text = input_layer(shape) + _layer("Pooling", "pooling_param", f"pool: {method} {body}")
    case_id = f"vision_pool_empty_{method}_{shape[2]}x{shape[3]}"
    net_path, model_path, ref = reference(tmp_path, case_id, text, {})
    net = caffe2onnx.load(net_path, model_path)
    want = ref.blobs[net.outputs[0]]
    assert (np.isnan(want).any() if method == "AVE" else (want == -np.finfo(np.float32).max).any())
    for opset in OPSETS:
        got = onnx_blobs(net, opset, ref.inputs)
        np.testing.assert_array_equal(np.isnan(got[net.outputs[0]]), np.isnan(want))  # harness ignores NaN
        assert_close({k: np.nan_to_num(v) for k, v in got.items()}, {k: np.nan_to_num(v) for k, v in ref.blobs.items()},
                     net.tensors)


def _ops(text: str, tmp_path) -> list[str]:
    (tmp_path / "n.prototxt").write_text(text)
    return [n.op_type for n in build_model(caffe2onnx.load(tmp_path / "n.prototxt"), 17).graph.node]


def test_pooling_emits_extra_ops_only_when_needed(tmp_path):
    def ops(shape, body):
        return _ops(input_layer(shape) + _layer("Pooling", "pooling_param", body), tmp_path)
    assert ops((1, 1, 5, 5), "pool: AVE kernel_size: 3 stride: 1 pad: 1") == ["AveragePool"]
    assert ops((1, 1, 8, 8), "pool: AVE kernel_size: 3 stride: 2") == ["AveragePool", "Mul"]
    assert ops((1, 1, 8, 8), "pool: MAX kernel_size: 3 stride: 2") == ["MaxPool"]
    assert ops((1, 1, 6, 6), "pool: MAX kernel_size: 2 stride: 3") == ["Pad", "MaxPool"]
    assert ops((1, 1, 5, 7), "pool: AVE global_pooling: true") == ["GlobalAveragePool"]


# name: (input shape, lrn_param body)
LRN = {
    "across_default": ((2, 7, 4, 5), "local_size: 5"),
    "across_k2": ((1, 6, 3, 4), "local_size: 3 alpha: 0.5 beta: 0.3 k: 2"),
    "across_large_alpha": ((2, 5, 3, 3), "local_size: 5 alpha: 1.1 beta: 0.75 k: 0.5"),
    "across_size1": ((1, 4, 3, 5), "local_size: 1 alpha: 0.7 beta: 1.5 k: 1.5"),
    "across_size_gt_channels": ((1, 3, 4, 4), "local_size: 7 alpha: 2 beta: 0.6 k: 1"),
    "within_default": ((2, 3, 6, 7), "local_size: 3 norm_region: WITHIN_CHANNEL"),
    "within_k_ignored": ((1, 2, 5, 6), "local_size: 5 alpha: 2 beta: 0.5 k: 3 norm_region: WITHIN_CHANNEL"),
    "within_size1": ((1, 3, 4, 4), "local_size: 1 alpha: 0.9 beta: 1.2 norm_region: WITHIN_CHANNEL"),
    "within_size_gt_input": ((3, 2, 3, 4), "local_size: 7 alpha: 1.5 beta: 0.75 k: 2 norm_region: WITHIN_CHANNEL"),
}


@pytest.mark.parametrize("case", sorted(LRN))
def test_lrn(tmp_path, case):
    shape, body = LRN[case]
    text = input_layer(shape) + _layer("LRN", "lrn_param", body)
    check_case(tmp_path, f"vision_lrn_{case}", text, {}, input_scale=2.0)


def test_conv_pool_lrn_chain(tmp_path):
    text = (input_layer((2, 3, 11, 10))
            + _layer("Convolution", "convolution_param", "num_output: 6 kernel_size: 3 stride: 2 pad: 1",
                     tops=("c",))
            + _layer("Pooling", "pooling_param", "pool: MAX kernel_size: 3 stride: 2", ("c",), ("p",))
            .replace('name: "l"', 'name: "pool"')
            + _layer("LRN", "lrn_param", "local_size: 3 alpha: 0.3", ("p",), ("n",)).replace('name: "l"', 'name: "lrn"')
            + _layer("Deconvolution", "convolution_param", "num_output: 2 kernel_size: 4 stride: 2 group: 2",
                     ("n",), ("out",)).replace('name: "l"', 'name: "up"'))
    check_case(tmp_path, "vision_chain", text, {})


@pytest.mark.parametrize("spelling", ["round_mode: FLOOR", "ceil_mode: false"])
def test_bvlc_round_mode_and_fork_ceil_mode_mean_the_same(tmp_path, spelling):
    """BVLC's round_mode: FLOOR and the forks' ceil_mode: false both give Caffe's floor rounding.

    The installed real Caffe only parses ceil_mode, so its result for that spelling is the judge
    of both, and the two loaded nets must be identical."""
    body = "pool: MAX kernel_size: 3 stride: 2"
    case = "vision_pool_floor_spelling"
    text = input_layer((1, 2, 8, 8)) + _layer("Pooling", "pooling_param", f"{body} ceil_mode: false")
    check_case(tmp_path, case, text, {})
    (tmp_path / "b.prototxt").write_text(text.replace("ceil_mode: false", spelling))
    a, b = caffe2onnx.load(tmp_path / "net.prototxt"), caffe2onnx.load(tmp_path / "b.prototxt")
    assert a.layers[0].params == b.layers[0].params and b.layers[0].params.ceil is False
    assert b.shape(b.outputs[0]) == (1, 2, 3, 3)  # ceil rounding would give 4x4
