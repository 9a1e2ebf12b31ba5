"""Spatial layers: Convolution, Deconvolution, Pooling, LRN."""
from __future__ import annotations

import numpy as np
from ..onnx_lite import TensorProto  # not `import onnx`: see onnx_lite

from ..ir import Layer
from .registry import MAPPINGS, GraphBuilder

FLT_MAX = float(np.finfo(np.float32).max)  # Caffe's MAX pooling starts every window at -FLT_MAX


def _conv_attrs(layer: Layer) -> dict:
    p = layer.params
    return dict(kernel_shape=list(p.kernel), strides=list(p.stride), pads=list(p.pad) * 2,
                dilations=list(p.dilation), group=p.group)


def _conv_weights(layer: Layer, g: GraphBuilder) -> list[str]:
    return [g.weight(0)] + ([g.weight(1)] if layer.params.bias_term else [])


@MAPPINGS.register("Convolution")
def convolution(layer: Layer, g: GraphBuilder) -> None:
    """Grouped, dilated cross-correlation W * x (+ b); each bottom -> its top with the same weights."""
    weights = _conv_weights(layer, g)
    for x, y in zip(layer.inputs, layer.outputs):
        g.node("Conv", [x, *weights], [y], **_conv_attrs(layer))


@MAPPINGS.register("Deconvolution")
def deconvolution(layer: Layer, g: GraphBuilder) -> None:
    """Transposed convolution, weights (C_in, num_output/group, k...); out = s(in-1) + d(k-1)+1 - 2p."""
    # Caffe's weight layout is already ConvTranspose's; symmetric explicit pads and no
    # output_padding give exactly Caffe's output size, so no output_shape is needed.
    weights = _conv_weights(layer, g)
    for x, y in zip(layer.inputs, layer.outputs):
        g.node("ConvTranspose", [x, *weights], [y], **_conv_attrs(layer))


def _end_pads(layer: Layer, outs: list[int] | None = None) -> list[int]:
    """Per axis, the end padding that makes a floor-mode ONNX pool produce ``outs`` windows (Caffe's count)."""
    p = layer.params
    outs = outs or list(layer.output_shapes[0][2:])
    ends = []
    for d, k, s, pad, o in zip(layer.input_shapes[0][2:], p.kernel, p.stride, p.pad, outs):
        # The last window ends at (o-1)*s + k - pad; input beyond that is never read (end < 0).
        end = (o - 1) * s + k - d - pad
        ends.append(end)
        assert (d + pad + max(end, 0) - k) // s + 1 == o, f"pooling plan for {layer.name!r} is off"
    return ends


def _caffe_window_counts(layer: Layer) -> np.ndarray:
    """Caffe's AVE divisor per output position: the window clipped to the padded input (may be <= 0)."""
    p = layer.params
    per_axis = []
    for d, k, s, pad, o in zip(layer.input_shapes[0][2:], p.kernel, p.stride, p.pad, layer.output_shapes[0][2:]):
        start = np.arange(o) * s - pad
        per_axis.append(np.minimum(start + k, d + pad) - start)
    return np.multiply.outer(*per_axis)


def _beyond(layer: Layer) -> list[int]:
    """Per axis 1 where Caffe keeps a last window lying wholly past the input (ceil, kernel < stride)."""
    return [1 if e >= k else 0 for e, k in zip(_end_pads(layer), layer.params.kernel)]


def _max_pool_with_mask(layer: Layer, g: GraphBuilder) -> None:
    """MaxPool with Indices; ONNX flattens them over the whole tensor, Caffe within each (n, c) plane."""
    p = layer.params
    h, w = layer.input_shapes[0][2:]
    # A last window wholly past the input (ceil, kernel < stride) gives -FLT_MAX and mask -1 in
    # Caffe: pool the other windows, then pad both tops with those values.
    beyond = _beyond(layer)
    ends = _end_pads(layer, [o - b for o, b in zip(layer.output_shapes[0][2:], beyond)])
    attrs = dict(kernel_shape=list(p.kernel), strides=list(p.stride), pads=[*p.pad, *(max(e, 0) for e in ends)])
    y, mask = (g.fresh("pooled"), g.fresh("mask")) if any(beyond) else layer.outputs
    # Both take the first maximum in row-major window order (Caffe's strict >), checked on ties.
    indices = g.node("MaxPool", [layer.inputs[0]], [y, g.fresh("indices")], **attrs)[1]
    plane = g.node("Mod", [indices, g.const(np.int64(h * w), "plane")])[0]
    g.node("Cast", [plane], [mask], to=TensorProto.FLOAT)
    if any(beyond):
        pads = g.const([0, 0, 0, 0, 0, 0, *beyond], "pads", np.int64)
        for value, src, dst in ((-FLT_MAX, y, layer.outputs[0]), (-1.0, mask, layer.outputs[1])):
            g.node("Pad", [src, pads, g.const(np.float32(value), "fill")], [dst], mode="constant")


@MAPPINGS.register("Pooling")
def pooling(layer: Layer, g: GraphBuilder) -> None:
    """Caffe MAX/AVE pooling: ceil or floor size, windows starting in the padding dropped, AVE / clipped window.

    Source: BVLC src/caffe/layers/pooling_layer.cpp (the mask top: float h * W + w per channel plane)
    Limits: STOCHASTIC refused.
    """
    p = layer.params
    x, y = layer.inputs[0], layer.outputs[0]
    is_max = p.method == "MAX"
    if p.mask:
        _max_pool_with_mask(layer, g)
        return
    if p.global_pooling:
        g.node("GlobalMaxPool" if is_max else "GlobalAveragePool", [x], [y])
        return
    ends = _end_pads(layer)
    # With ceil rounding, kernel < stride and no pad, Caffe keeps a last window lying wholly past
    # the input (at most one per axis): MAX gives -FLT_MAX there, AVE 0/count. ONNX pools need
    # pads < kernel, so MAX pads the input explicitly with -FLT_MAX, and AVE pools the non-empty
    # windows and pads its output with zeros (0 * the factor below gives Caffe's 0/count).
    # A zero Pad before AveragePool is avoided: some onnxruntime releases fuse the two into
    # one pool whose pads break their own pads < kernel check.
    beyond = _beyond(layer)
    if is_max and any(beyond):
        extra = [e if b else 0 for e, b in zip(ends, beyond)]
        fill = g.const(np.float32(-FLT_MAX), "fill")
        x = g.node("Pad", [x, g.const([0, 0, 0, 0, 0, 0, *extra], "pads", np.int64), fill], 1, mode="constant")[0]
        ends = [0 if b else e for e, b in zip(ends, beyond)]
    elif any(beyond):
        ends = _end_pads(layer, [o - b for o, b in zip(layer.output_shapes[0][2:], beyond)])
    attrs = dict(kernel_shape=list(p.kernel), strides=list(p.stride), pads=[*p.pad, *(max(e, 0) for e in ends)])
    if is_max:
        g.node("MaxPool", [x], [y], **attrs)
        return
    # ONNX (count_include_pad=1, ceil_mode=0, window always inside the padded input) divides by
    # k_h*k_w; Caffe divides by the window clipped to H+pad. Rescale where they differ.
    with np.errstate(divide="ignore"):
        factor = np.float32(p.kernel[0] * p.kernel[1]) / _caffe_window_counts(layer).astype(np.float32)
    if np.all(factor == 1):
        g.node("AveragePool", [x], [y], count_include_pad=1, **attrs)
        return
    pooled = g.node("AveragePool", [x], 1, count_include_pad=1, **attrs)[0]
    if any(beyond):
        zero = g.const(np.float32(0.0), "zero")
        pooled = g.node("Pad", [pooled, g.const([0, 0, 0, 0, 0, 0, *beyond], "pads", np.int64), zero], 1,
                        mode="constant")[0]
    g.node("Mul", [pooled, g.const(factor[None, None], "count_factor")], [y])


@MAPPINGS.register("LRN")
def lrn(layer: Layer, g: GraphBuilder) -> None:
    """ACROSS_CHANNELS: x / (k + alpha/n * sum_c x^2)^beta; WITHIN_CHANNEL: x * (1 + alpha * avg_nxn x^2)^-beta."""
    p = layer.params
    x, y = layer.inputs[0], layer.outputs[0]
    if p.across_channels:
        g.node("LRN", [x], [y], size=p.local_size, alpha=p.alpha, beta=p.beta, bias=p.k)
        return
    # Caffe builds WITHIN_CHANNEL from Power(2) -> AVE Pooling (pad (n-1)/2, stride 1, every
    # window n*n inside the padded input) -> Power(scale alpha, shift 1, power -beta) -> product;
    # k takes no part in it.
    n, half = p.local_size, (p.local_size - 1) // 2
    square = g.node("Mul", [x, x], 1)[0]
    mean = g.node("AveragePool", [square], 1, kernel_shape=[n, n], pads=[half] * 4, count_include_pad=1)[0]
    scaled = g.node("Mul", [mean, g.const(np.float32(p.alpha), "alpha")], 1)[0]
    shifted = g.node("Add", [scaled, g.const(np.float32(1.0), "one")], 1)[0]
    factor = g.node("Pow", [shifted, g.const(np.float32(-p.beta), "neg_beta")], 1)[0]
    g.node("Mul", [x, factor], [y])
