"""Unsqueeze, PixelShuffle, Pad, Pooling's mask top, MaxUnPool, BatchNormKyle against the reference
(brocolli) Caffe at every opset in OPSETS; Proposal's refusal."""
import numpy as np
import pytest

import caffe2onnx
from caffe2onnx.errors import Caffe2OnnxError, UnsupportedLayerError
from harness import check_case, input_layer


def _layer(type_: str, body: str = "", param: str = "", bottoms=("data",), top: str = "out", name: str = "l") -> str:
    p = f"{param} {{ {body} }}" if body else ""
    bots = " ".join(f'bottom: "{b}"' for b in bottoms)
    return f'layer {{ name: "{name}" type: "{type_}" {bots} top: "{top}" {p} }}\n'


def _pad(body: str) -> str:
    return _layer("Pad", body, "pad_param")


def _pool(body: str, bottom: str = "data") -> str:
    return (f'layer {{ name: "pool" type: "Pooling" bottom: "{bottom}" top: "pooled" top: "mask" '
            f'pooling_param {{ pool: MAX {body} }} }}\n')


_RELU = 'layer { name: "relu" type: "ReLU" bottom: "data" top: "r" }\n'
_CONV = ('layer { name: "conv" type: "Convolution" bottom: "pooled" top: "feat" '
         'convolution_param { num_output: 3 kernel_size: 1 } }\n')


def _unpool(dst, data: str = "pooled") -> str:
    return _layer("MaxUnPool", f"dst_h: {dst[0]} dst_w: {dst[1]}", "max_unpool_param", (data, "mask"), "unpooled",
                  "unpool")


def _bnk_weights(alpha_beta: bool, factor: float = 1.0):
    def tweak(weights):
        c = weights["l"][0].shape[0]
        rng = np.random.default_rng(7)
        w = [rng.normal(0, 0.3, c).astype(np.float32) * np.float32(factor),
             rng.uniform(0.5, 2.0, c).astype(np.float32) * np.float32(factor), np.array([factor], np.float32)]
        if alpha_beta:
            w += [rng.uniform(0.5, 1.5, c).astype(np.float32), rng.uniform(-0.5, 0.5, c).astype(np.float32)]
        weights["l"] = w
    return tweak


def _bnk(body: str = "", top: str = "out") -> str:
    return _layer("BatchNormKyle", body, "batch_norm_param", top=top)


# case id -> (input shape, layer text, weight tweak or None)
CASES = {
    "unsqueeze_0": ((2, 3, 4), _layer("Unsqueeze", "dim: 0", "unsqueeze_param"), None),
    "unsqueeze_2": ((2, 3, 4), _layer("Unsqueeze", "dim: 2", "unsqueeze_param"), None),
    "unsqueeze_end": ((2, 3, 4), _layer("Unsqueeze", "dim: 3", "unsqueeze_param"), None),
    "unsqueeze_neg1": ((2, 3, 4), _layer("Unsqueeze", "dim: -1", "unsqueeze_param"), None),
    "unsqueeze_neg4": ((2, 3, 4), _layer("Unsqueeze", "dim: -4", "unsqueeze_param"), None),
    "pixelshuffle_2": ((2, 8, 3, 5), _layer("PixelShuffle", "upscale_factor: 2", "pixelshuffle_param"), None),
    "pixelshuffle_3_odd": ((1, 18, 3, 5), _layer("PixelShuffle", "upscale_factor: 3", "pixelshuffle_param"), None),
    # Caffe checks C % r only: 6 channels, r = 2 -> 1 output channel from channels 0..3.
    "pixelshuffle_channels_left_over": ((1, 6, 3, 4), _layer("PixelShuffle", "upscale_factor: 2",
                                                             "pixelshuffle_param"), None),
    "pad_constant_default": ((2, 3, 4, 5), _pad("pad_u: 1 pad_d: 2 pad_l: 3 pad_r: 1"), None),
    "pad_constant_value": ((1, 2, 3, 5), _pad("pad_type: CONSTANT pad_u: 2 pad_r: 3 pad_value: -1.5"), None),
    "pad_replicate": ((2, 3, 4, 5), _pad("pad_type: REPLICATE pad_u: 2 pad_d: 1 pad_l: 3 pad_r: 4"), None),
    "pad_reflect": ((2, 3, 4, 5), _pad("pad_type: REFLECT pad_u: 3 pad_d: 1 pad_l: 2 pad_r: 4"), None),
    "pad_reflect_one_side": ((1, 2, 3, 4), _pad("pad_type: REFLECT pad_d: 2 pad_l: 3"), None),
    "pad_zero": ((1, 2, 3, 4), _pad("pad_type: REFLECT"), None),
    "pad_negative_crop": ((2, 3, 7, 8), _pad("pad_u: -1 pad_d: -2 pad_l: -3 pad_r: -1"), None),
    "pad_negative_crop_reflect": ((1, 2, 6, 5), _pad("pad_type: REFLECT pad_u: -2 pad_d: -1 pad_l: -1 pad_r: -1"),
                                  None),
    "pool_mask_2x2_odd": ((2, 3, 5, 7), _pool("kernel_size: 2 stride: 2"), None),
    "pool_mask_3x3_pad": ((1, 2, 7, 6), _pool("kernel_size: 3 stride: 2 pad: 1"), None),
    "pool_mask_floor": ((1, 2, 7, 6), _pool("kernel_size: 3 stride: 2 ceil_mode: false"), None),
    "pool_mask_ties_after_relu": ((2, 3, 6, 5), _RELU + _pool("kernel_size: 2 stride: 2", "r"), None),
    # Ceil rounding with kernel < stride: a last window wholly past the input, mask -1 there.
    "pool_mask_past_input": ((1, 2, 5, 5), _pool("kernel_size: 1 stride: 3"), None),
    "pool_mask_past_input_w": ((1, 2, 6, 7), _pool("kernel_size: 2 stride: 3"), None),
    "pool_mask_global": ((2, 3, 4, 5), _RELU + _pool("global_pooling: true", "r"), None),
    "unpool_pooled": ((2, 3, 6, 8), _pool("kernel_size: 2 stride: 2") + _unpool((6, 8)), None),
    "unpool_odd_ceil": ((1, 2, 5, 7), _pool("kernel_size: 2 stride: 2") + _unpool((5, 7)), None),
    "unpool_after_conv": ((1, 2, 6, 6), _pool("kernel_size: 2 stride: 2") + _CONV.replace("num_output: 3",
                                                                                          "num_output: 2")
                          + _unpool((6, 6), "feat"), None),
    # Overlapping windows repeat an argmax: Caffe keeps the later window's value.
    "unpool_overlapping_after_conv": ((1, 2, 7, 7), _RELU.replace('"data"', '"data"') + _pool(
        "kernel_size: 3 stride: 2", "r") + _CONV.replace("num_output: 3", "num_output: 2") + _unpool((7, 7), "feat"),
        None),
    # dst wider than the pooled input: Caffe reads the index in the dst plane (rows shift).
    "unpool_wider_dst": ((1, 2, 4, 4), _pool("kernel_size: 2 stride: 2") + _unpool((3, 7)), None),
    "bnk_global": ((2, 3, 4, 5), _bnk(), _bnk_weights(False, 2.0)),
    "bnk_alpha_beta": ((2, 3, 4, 5), _bnk("use_alpha_beta: true eps: 0.001"), _bnk_weights(True)),
    "bnk_alpha_beta_2d": ((4, 3), _bnk("use_alpha_beta: true"), _bnk_weights(True, 0.5)),
    "bnk_batch_stats": ((2, 3, 4, 5), _bnk("use_global_stats: false use_alpha_beta: true"), _bnk_weights(True)),
    "bnk_in_place": ((2, 3, 4), _bnk("use_alpha_beta: true", top="data"), _bnk_weights(True)),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_extra(tmp_path, case):
    shape, text, tweak = CASES[case]
    check_case(tmp_path, f"extra_{case}", input_layer(shape) + text, {}, tweak_weights=tweak)


def test_pool_mask_hand_computed(tmp_path):
    """Caffe's mask is h * W + w of the first strict maximum in the window, per channel plane."""
    from harness import numpy_blobs, onnx_blobs, OPSETS
    x = np.array([[[[1, 3, 3, 0, 5],
                    [2, 3, 1, 5, 0],
                    [0, 0, 7, 7, 2]]]], np.float32)
    path = tmp_path / "net.prototxt"
    path.write_text(input_layer(x.shape) + _pool("kernel_size: 2 stride: 2"))
    net = caffe2onnx.load(path)
    # windows (ceil): rows {0,1},{2}; cols {0,1},{2,3},{4}
    # ties: 3 at (0,1) and (1,1) -> 1; 0 at (2,0) and (2,1) -> 10; 7 at (2,2) and (2,3) -> 12
    want = np.array([[[[1, 8, 4], [10, 12, 14]]]], np.float32)
    for opset in (OPSETS[0], OPSETS[-1]):
        np.testing.assert_array_equal(onnx_blobs(net, opset, {"data": x})["mask"], want)
    np.testing.assert_array_equal(numpy_blobs(net, {"data": x})["mask"], want)


@pytest.mark.parametrize("text,needle", [
    (_pad("pad_u: -1 pad_d: 1"), "mixes negative and non-negative"),
    (_pad("pad_type: REFLECT pad_l: 5"), "REFLECT pads"),
    (_layer("Unsqueeze"), "dim"),
    (_layer("MaxUnPool", "dst_h: 4", "max_unpool_param", ("data", "data")), "dst_h/dst_w"),
    ('layer { name: "pool" type: "Pooling" bottom: "data" top: "p" top: "m" '
     'pooling_param { pool: AVE kernel_size: 2 } }', "needs MAX"),
    ('layer { name: "im" type: "Input" top: "im_info" input_param { shape { dim: 1 dim: 3 } } }\n'
     'layer { name: "prop" type: "Proposal" bottom: "data" bottom: "data" bottom: "im_info" top: "rois" }',
     "cut the net before it"),
])
def test_refusals(tmp_path, text, needle):
    path = tmp_path / "net.prototxt"
    path.write_text(input_layer((1, 2, 4, 5)) + text)
    with pytest.raises(Caffe2OnnxError, match=needle):
        caffe2onnx.load(path)


# Not Unsqueeze: Caffe fixes its top shape in LayerSetUp, so a Caffe net reshaped to another batch
# keeps the old top shape (and copies only the new bottom's count into it).
@pytest.mark.parametrize("case", ["unpool_after_conv", "pool_mask_3x3_pad", "pixelshuffle_2", "pad_reflect"])
def test_dynamic_batch(tmp_path, case):
    from harness import check_dynamic_batch, OPSETS
    shape, text, _ = CASES[case]
    check_dynamic_batch(tmp_path, input_layer(shape) + text, OPSETS[-1])
