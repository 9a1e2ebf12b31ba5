"""Fork layers real Caffe lacks, against hand-computed cases from each fork's source.

Every case runs the NumPy reference (validators/numpy_ref/fork.py) and the ONNX model at each
opset in OPSETS; the hand-computed cases pin both to numbers worked out from the fork's C++.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

import caffe2onnx
from caffe2onnx.caffemodel_writer import write_caffemodel
from caffe2onnx.validators.numpy_ref import run_numpy
from harness import OPSETS, assert_close, input_layer, onnx_blobs

F = np.float32


def inputs_text(**shapes) -> str:
    return "".join(input_layer(s, n).replace('name: "input"', f'name: "in_{n}"') for n, s in shapes.items())


def layer(type_: str, body: str = "", bottoms=("data",), top: str = "out", name: str = "l") -> str:
    b = " ".join(f'bottom: "{x}"' for x in bottoms)
    return f'layer {{ name: "{name}" type: "{type_}" {b} top: "{top}" {body} }}\n'


def fork_net(tmp_path, text: str, weights: dict | None = None, seed: int = 0):
    """Writes the prototxt and a caffemodel (seeded weights, entries of ``weights`` replacing them)."""
    path = tmp_path / "net.prototxt"
    path.write_text(text)
    seeded = caffe2onnx.load(path, random_weights=seed)
    blobs = {l.name: [np.array(w) for w in l.weights] for l in seeded.layers if l.weights}
    blobs.update({k: [np.asarray(a, F) for a in v] for k, v in (weights or {}).items()})
    model = tmp_path / "net.caffemodel"
    write_caffemodel(model, ((l.name, l.type, blobs.get(l.name, [])) for l in seeded.layers), seeded.name)
    return path, model, caffe2onnx.load(path, model)


def check_fork(tmp_path, text: str, inputs: dict | None = None, weights: dict | None = None,
               expected: dict | None = None, opsets=OPSETS, max_abs: float = 1e-5, seed: int = 0):
    """NumPy reference == hand-computed ``expected``; ONNX == NumPy reference for every tensor."""
    path, model, net = fork_net(tmp_path, text, weights, seed)
    rng = np.random.default_rng(seed + 1)
    inputs = inputs or {n: rng.standard_normal(net.shape(n)).astype(F) for n in net.inputs}
    inputs = {k: np.asarray(v, F) for k, v in inputs.items()}
    ref = run_numpy(net, inputs)
    for name, want in (expected or {}).items():
        np.testing.assert_allclose(ref[name], np.asarray(want, F), rtol=0, atol=max_abs, err_msg=name)
    for opset in opsets:
        assert_close(onnx_blobs(net, opset, inputs), ref, net.tensors, max_abs=max_abs, mean_abs=max_abs,
                     what=f"ONNX opset {opset} vs NumPy reference")
    return path, model, net, inputs, ref


def ramp(*shape) -> np.ndarray:
    return np.arange(math.prod(shape), dtype=F).reshape(shape)


# ---- hand-computed cases, one or more per layer -------------------------------------------

def test_shuffle_channel_hand(tmp_path):
    # Resize_cpu: input channel i*(C/g)+j -> output j*g+i; C=6, g=2 gives 0,3,1,4,2,5.
    x = np.broadcast_to(np.arange(6, dtype=F)[None, :, None, None], (2, 6, 2, 3))
    check_fork(tmp_path, inputs_text(data=(2, 6, 2, 3)) + layer("ShuffleChannel", "shuffle_channel_param { group: 2 }"),
               {"data": x}, expected={"out": np.broadcast_to(F([0, 3, 1, 4, 2, 5])[None, :, None, None], x.shape)})


def test_axpy_hand(tmp_path):
    # axpy_layer.cpp: top = bottom[2]; top += bottom[0][n, c] * bottom[1] (X is bottom 1, Y bottom 2).
    a, x, y = F([2, -1]).reshape(1, 2, 1, 1), F([[1, 2], [3, 4]]).reshape(1, 2, 1, 2), F([[10, 20], [30, 40]]).reshape(1, 2, 1, 2)
    text = inputs_text(a=(1, 2, 1, 1), x=(1, 2, 1, 2), y=(1, 2, 1, 2)) + layer("Axpy", bottoms=("a", "x", "y"))
    check_fork(tmp_path, text, {"a": a, "x": x, "y": y}, expected={"out": F([[12, 24], [27, 36]]).reshape(1, 2, 1, 2)})


@pytest.mark.parametrize("type_, extra", [("ConvolutionDepthwise", ""), ("DepthwiseConvolution", "group: 2")])
def test_depthwise_hand(tmp_path, type_, extra):
    # 3x3 kernel, pad 1: a corner sees 4 inputs, an edge 6, the centre 9; channel 1 = 2 * 0.5 per tap.
    x = np.stack([np.ones((3, 3), F), np.full((3, 3), 2, F)])[None]
    w = np.stack([np.ones((1, 3, 3), F), np.full((1, 3, 3), 0.5, F)])
    counts = F([[4, 6, 4], [6, 9, 6], [4, 6, 4]])
    body = f"convolution_param {{ num_output: 2 kernel_size: 3 pad: 1 stride: 1 {extra} }}"
    check_fork(tmp_path, inputs_text(data=(1, 2, 3, 3)) + layer(type_, body), {"data": x},
               weights={"l": [w, F([1, -1])]}, expected={"out": np.stack([counts + 1, counts - 1])[None]})


def test_bn_segnet_inference_hand(tmp_path):
    text = inputs_text(data=(1, 1, 2, 2)) + layer("BN", "bn_param { bn_mode: INFERENCE }")
    blobs = [F(2).reshape(1, 1, 1, 1), F(1).reshape(1, 1, 1, 1)]
    check_fork(tmp_path, text, {"data": F([1, 2, 3, 4]).reshape(1, 1, 2, 2)}, weights={"l": blobs},
               expected={"out": F([3, 5, 7, 9]).reshape(1, 1, 2, 2)})


def test_bn_segnet_learn_is_the_default_and_uses_batch_statistics(tmp_path):
    # LEARN (the default): mean 4, E(x^2) = 21, var = 21 - 16 = 5 (+1e-9), then * scale + shift.
    text = inputs_text(data=(2, 1, 1, 2)) + layer("BN", "bn_param { scale_filler { type: 'constant' } }")
    blobs = [F(3).reshape(1, 1, 1, 1), F(-1).reshape(1, 1, 1, 1)]
    want = (F([-3, -1, 1, 3]) / np.sqrt(F(5))) * 3 - 1
    check_fork(tmp_path, text, {"data": F([1, 3, 5, 7]).reshape(2, 1, 1, 2)}, weights={"l": blobs},
               expected={"out": want.reshape(2, 1, 1, 2)})


def test_bn_pspnet_hand(tmp_path):
    # (x - mean) * (var + eps)^-0.5 * slope + bias: mean 1, var 3, eps 1 -> (x - 1) / 2 * 4 - 1.
    text = inputs_text(data=(1, 1, 1, 2)) + layer("BN", "bn_param { eps: 1 frozen: true }")
    blobs = [F(4), F(-1), F(1), F(3)]
    check_fork(tmp_path, text, {"data": F([1, 3]).reshape(1, 1, 1, 2)},
               weights={"l": [b.reshape(1, 1, 1, 1) for b in blobs]}, expected={"out": F([-1, 3]).reshape(1, 1, 1, 2)})


INTERP_HAND = {  # interp_param -> (input, output) worked out from interp_layer.cpp / interp.cpp
    "zoom_factor: 2": (ramp(1, 1, 2, 2), F([[0, .5, 1], [1, 1.5, 2], [2, 2.5, 3]])),
    "height: 1 width: 3": (ramp(1, 1, 2, 2), F([[0, .5, 1]])),  # one row: rheight = 0 -> row 0
    "zoom_factor: 2 pad_beg: -1 pad_end: -1": (ramp(1, 1, 4, 4), F([[5, 5.5, 6], [7, 7.5, 8], [9, 9.5, 10]])),
    # shrink first ((5-1)/2+1 = 3), then zoom (3 + 2*1 = 5): the sizes agree, the fork copies.
    "shrink_factor: 2 zoom_factor: 2": (ramp(1, 1, 5, 5), ramp(5, 5)),
    "shrink_factor: 2": (ramp(1, 1, 5, 3), F([[0, 2], [6, 8], [12, 14]])),
}


@pytest.mark.parametrize("body", sorted(INTERP_HAND))
def test_interp_hand(tmp_path, body):
    x, want = INTERP_HAND[body]
    check_fork(tmp_path, inputs_text(data=x.shape) + layer("Interp", f"interp_param {{ {body} }}"), {"data": x},
               expected={"out": want[None, None]})


FEAT = ramp(1, 1, 4, 4)  # value 4h + w
ROI_HAND = {  # roi -> pooled 2x2, from roi_pooling_layer.cpp
    "whole map": ([0, 0, 0, 3, 3], 1.0, [[5, 7], [13, 15]]),
    # x1 = round(0.5) = 1 and x2 = round(2.5) = 3 (C rounds halves away from zero; to-even gives 0, 2):
    # size 3, bin 1.5, bins [1, 3) and [2, 4).
    "halves": ([0, 1, 1, 5, 5], 0.5, [[10, 11], [14, 15]]),
    "outside": ([0, 10, 10, 12, 12], 1.0, [[0, 0], [0, 0]]),  # every bin clipped empty -> 0
    "negative corner": ([0, -5, -5, 1, 1], 1.0, [[0, 0], [0, 5]]),  # size 7, bins [-5,-1)->empty, [-2,2)
}


@pytest.mark.parametrize("case", sorted(ROI_HAND))
def test_roi_pooling_hand(tmp_path, case):
    roi, scale, want = ROI_HAND[case]
    text = inputs_text(feat=(1, 1, 4, 4), rois=(1, 5)) + layer(
        "ROIPooling", f"roi_pooling_param {{ pooled_h: 2 pooled_w: 2 spatial_scale: {scale} }}", ("feat", "rois"))
    check_fork(tmp_path, text, {"feat": FEAT, "rois": F([roi])}, expected={"out": F(want)[None, None]})


PS_FEAT = ramp(1, 4, 4, 4) % 16 + (np.arange(4, dtype=F) + 1)[None, :, None, None] * 100  # 100(k+1) + 4h + w
PSROI_HAND = {  # roi -> (1, 2, 2), output_dim 1, group_size 2: bin (i, j) reads channel 2i + j
    "whole map": ([0, 0, 0, 3, 3], [[102.5, 204.5], [310.5, 412.5]]),
    # round(0.5) = 1, round(2.5) + 1 = 4: size 3, bins [1, 3) and [2, 4) on both axes.
    "halves": ([0, 0.5, 0.5, 2.5, 2.5], [[107.5, 208.5], [311.5, 412.5]]),
    "outside": ([0, 9, 9, 12, 12], [[0, 0], [0, 0]]),
}


@pytest.mark.parametrize("case", sorted(PSROI_HAND))
def test_psroi_pooling_hand(tmp_path, case):
    roi, want = PSROI_HAND[case]
    text = inputs_text(feat=(1, 4, 4, 4), rois=(1, 5)) + layer(
        "PSROIPooling", "psroi_pooling_param { spatial_scale: 1 output_dim: 1 group_size: 2 }", ("feat", "rois"))
    check_fork(tmp_path, text, {"feat": PS_FEAT, "rois": F([roi])}, expected={"out": F(want)[None, None]})


# ---- seeded cases: odd sizes, every field, ONNX vs the NumPy reference ----------------------

ROIS = F([[0, 0, 0, 7, 7], [1, 1.5, 2.5, 5.4, 3.6], [0, -3, -2, 20, 30], [1, 4, 4, 4, 4], [0, 6.5, 0.5, 2, 1],
          [1, 2.5, 3.5, 6.5, 9.5]])
SEEDED = {
    "shuffle_g3_odd": (dict(data=(2, 9, 3, 5)), layer("ShuffleChannel", "shuffle_channel_param { group: 3 }")),
    "shuffle_2d": (dict(data=(3, 8)), layer("ShuffleChannel", "shuffle_channel_param { group: 4 }")),
    "axpy_2d_scale": (dict(a=(2, 3), x=(2, 3, 5, 7), y=(2, 3, 5, 7)), layer("Axpy", bottoms=("a", "x", "y"))),
    "axpy_4d_scale": (dict(a=(2, 3, 1, 1), x=(2, 3, 4, 3), y=(2, 3, 4, 3)), layer("Axpy", bottoms=("a", "x", "y"))),
    "convdw_stride_dil": (dict(data=(2, 5, 9, 8)), layer("ConvolutionDepthwise", "convolution_param { num_output: 5 "
                          "kernel_size: 3 pad: 2 stride: 2 dilation: 2 bias_term: true }")),
    "convdw_hw": (dict(data=(1, 3, 7, 6)), layer("ConvolutionDepthwise", "convolution_param { kernel_h: 3 kernel_w: 1 "
                  "pad_h: 1 pad_w: 0 stride_h: 2 stride_w: 1 bias_term: false }")),
    "dwconv_group": (dict(data=(2, 4, 7, 7)), layer("DepthwiseConvolution", "convolution_param { num_output: 8 "
                     "kernel_size: 3 group: 4 stride: 2 }")),
    "bn_segnet_inference": (dict(data=(2, 3, 5, 4)), layer("BN", "bn_param { bn_mode: INFERENCE }", top="data")),
    "bn_segnet_learn_2d": (dict(data=(4, 3)), layer("BN", "bn_param { bn_mode: LEARN }")),
    "bn_pspnet_in_place": (dict(data=(2, 3, 5, 4)), layer("BN", "bn_param { frozen: true momentum: 0.95 }", top="data")),
    "bn_pspnet_3d": (dict(data=(2, 3, 5)), layer("BN", "bn_param { eps: 0.001 slope_filler { value: 1 } }")),
    "interp_zoom_odd": (dict(data=(1, 2, 5, 7)), layer("Interp", "interp_param { zoom_factor: 3 }")),
    "interp_size_down": (dict(data=(2, 2, 9, 8)), layer("Interp", "interp_param { height: 4 width: 5 }")),
    "interp_size_1x1": (dict(data=(1, 2, 3, 4)), layer("Interp", "interp_param { height: 1 width: 1 }")),
    "interp_shrink_zoom_pads": (dict(data=(1, 2, 10, 9)), layer("Interp", "interp_param { shrink_factor: 3 "
                                "zoom_factor: 4 pad_beg: -2 pad_end: -1 }")),
    "interp_same_size": (dict(data=(1, 2, 4, 5)), layer("Interp", "interp_param { height: 4 width: 5 }")),
}


@pytest.mark.parametrize("case", sorted(SEEDED))
def test_fork_seeded(tmp_path, case):
    shapes, text = SEEDED[case]
    weights = None
    if case.startswith("bn_pspnet"):  # variances must be positive
        c = shapes["data"][1]
        rng = np.random.default_rng(5)
        weights = {"l": [rng.uniform(0.5, 1.5, (1, c, 1, 1)), rng.normal(0, 0.3, (1, c, 1, 1)),
                         rng.normal(0, 0.3, (1, c, 1, 1)), rng.uniform(0.2, 2, (1, c, 1, 1))]}
    check_fork(tmp_path, inputs_text(**shapes) + text, weights=weights)


@pytest.mark.parametrize("type_, body", [
    ("ROIPooling", "roi_pooling_param { pooled_h: 3 pooled_w: 2 spatial_scale: 0.5 }"),
    ("ROIPooling", "roi_pooling_param { pooled_h: 7 pooled_w: 7 spatial_scale: 0.0625 }"),
    ("PSROIPooling", "psroi_pooling_param { spatial_scale: 0.5 output_dim: 3 group_size: 2 }"),
    ("PSROIPooling", "psroi_pooling_param { spatial_scale: 0.7 output_dim: 2 group_size: 3 }"),
])
@pytest.mark.parametrize("batch", [1, 2])
def test_roi_layers_seeded(tmp_path, type_, body, batch):
    g = 3 if "group_size: 3" in body else 2
    c = {"ROIPooling": 4, "PSROIPooling": (3 if g == 2 else 2) * g * g}[type_]
    rois = ROIS.copy() if batch == 2 else np.concatenate([np.zeros((6, 1), F), ROIS[:, 1:]], 1)
    if "0.0625" in body:
        rois[:, 1:] *= 16
    feat = np.random.default_rng(3).standard_normal((batch, c, 6, 9)).astype(F)
    text = inputs_text(feat=feat.shape, rois=rois.shape) + layer(type_, body, ("feat", "rois"))
    check_fork(tmp_path, text, {"feat": feat, "rois": rois})


@pytest.mark.parametrize("case", ["shuffle_g3_odd", "axpy_4d_scale", "bn_segnet_learn_2d", "interp_shrink_zoom_pads",
                                  "interp_size_down", "convdw_stride_dil"])
def test_dynamic_batch(tmp_path, case):
    """A --dynamic-batch model gives the NumPy reference's numbers at another batch size."""
    from caffe2onnx.converter import build_model, check_model
    from caffe2onnx.validators.onnx_runner import run_onnx
    shapes, text = SEEDED[case]
    path, model, net = fork_net(tmp_path, inputs_text(**shapes) + text)
    onnx_model = build_model(net, opset=OPSETS[-1], dynamic_batch=True)
    check_model(onnx_model)
    big = {n: (3, *s[1:]) for n, s in shapes.items()}
    net3 = caffe2onnx.load(path, model, input_shapes=big)
    rng = np.random.default_rng(0)
    inputs = {n: rng.standard_normal(s).astype(F) for n, s in big.items()}
    got, _ = run_onnx(onnx_model, inputs)
    assert_close(got, run_numpy(net3, inputs), net3.outputs, max_abs=1e-5)



@pytest.mark.parametrize("type_, body, c", [
    ("ROIPooling", "roi_pooling_param { pooled_h: 3 pooled_w: 4 spatial_scale: 0.25 }", 3),
    ("ROIPooling", "roi_pooling_param { pooled_h: 2 pooled_w: 2 spatial_scale: 1 }", 3),
    ("PSROIPooling", "psroi_pooling_param { spatial_scale: 0.25 output_dim: 2 group_size: 3 }", 18),
])
def test_roi_layers_on_many_half_way_rois(tmp_path, type_, body, c):
    """300 ROIs on a quarter-pixel grid: corners land on .5 after scaling, where rounding modes differ."""
    rng = np.random.default_rng(11)
    corners = rng.integers(-16, 60, (300, 4)) / 4
    rois = np.concatenate([rng.integers(0, 2, (300, 1)), corners], 1).astype(F)
    feat = rng.standard_normal((2, c, 9, 11)).astype(F)
    text = inputs_text(feat=feat.shape, rois=rois.shape) + layer(type_, body, ("feat", "rois"))
    check_fork(tmp_path, text, {"feat": feat, "rois": rois}, opsets=sorted({11, OPSETS[-1]}))


def test_roi_pooling_takes_4d_rois(tmp_path):
    """Caffe reads R = rois.num(): a (R, 5, 1, 1) rois blob pools like (R, 5)."""
    text = inputs_text(feat=(1, 1, 4, 4), rois=(2, 5, 1, 1)) + layer(
        "ROIPooling", "roi_pooling_param { pooled_h: 2 pooled_w: 2 }", ("feat", "rois"))
    rois = F([ROI_HAND["whole map"][0], ROI_HAND["negative corner"][0]]).reshape(2, 5, 1, 1)
    want = F([ROI_HAND["whole map"][2], ROI_HAND["negative corner"][2]])[:, None]
    check_fork(tmp_path, text, {"feat": FEAT, "rois": rois}, expected={"out": want})
