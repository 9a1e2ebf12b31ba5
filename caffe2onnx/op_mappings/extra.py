"""The reference Caffe's extra layers: Unsqueeze, PixelShuffle, Pad, MaxUnPool, BatchNormKyle."""
from __future__ import annotations

import dataclasses

import numpy as np
from ..onnx_lite import TensorProto, numpy_helper  # not `import onnx`: see onnx_lite

from ..ir import Layer
from .registry import MAPPINGS, GraphBuilder


@MAPPINGS.register("Unsqueeze")
def unsqueeze(layer: Layer, g: GraphBuilder) -> None:
    """A size-1 axis inserted at dim (negative dims count from the end): the data is copied unchanged.

    Source: brocolli caffe src/caffe/layers/unsqueeze.cpp
    Limits: none. (Caffe fixes the top shape in LayerSetUp: a Caffe net reshaped to another batch
    keeps the old top shape; with --dynamic-batch the ONNX top follows the batch.)
    """
    g.unsqueeze(layer.inputs[0], [layer.params.dim], list(layer.outputs))


@MAPPINGS.register("PixelShuffle")
def pixel_shuffle(layer: Layer, g: GraphBuilder) -> None:
    """out[n, p, i*r+a, j*r+b] = in[n, p*r*r + a*r + b, i, j]: DepthToSpace in CRD order.

    Source: brocolli caffe src/caffe/layers/pixelshuffle_layer.cpp
    Limits: 4-D only; channels beyond C // (r*r) * r*r (Caffe only checks C % r) are dropped, as Caffe does.
    """
    r = layer.params.factor
    x = layer.inputs[0]
    used = layer.output_shapes[0][1] * r * r
    if used != layer.input_shapes[0][1]:
        x = g.node("Slice", [x, g.const([0], "starts", np.int64), g.const([used], "ends", np.int64),
                             g.const([1], "axes", np.int64)])[0]
    g.node("DepthToSpace", [x], list(layer.outputs), blocksize=r, mode="CRD")


_ONNX_PAD_MODE = {"CONSTANT": "constant", "REPLICATE": "edge", "REFLECT": "reflect"}


@MAPPINGS.register("Pad")
def pad(layer: Layer, g: GraphBuilder) -> None:
    """H/W padded by pad_u/d/l/r: CONSTANT (pad_value), REPLICATE (edge), REFLECT (no edge repeat); all < 0 crops.

    Source: brocolli caffe src/caffe/layers/pad_layer.cpp
    Limits: 4-D only; pads mixing negative and non-negative values (Caffe writes out of bounds);
    REFLECT pads as large as the input (Caffe then reads its own padding).
    """
    p = layer.params
    u, d, left, right = p.pads
    x, out = layer.inputs[0], list(layer.outputs)
    if min(p.pads) < 0:  # Caffe crops rows |u|.. and columns |l|.., whatever pad_type says
        h, w = layer.output_shapes[0][2:]
        g.node("Slice", [x, g.const([-u, -left], "starts", np.int64), g.const([-u + h, -left + w], "ends", np.int64),
                         g.const([2, 3], "axes", np.int64)], out)
        return
    pads = g.const([0, 0, u, left, 0, 0, d, right], "pads", np.int64)
    if p.mode == "CONSTANT":
        g.node("Pad", [x, pads, g.const(np.float32(p.value), "value")], out, mode="constant")
    else:
        g.node("Pad", [x, pads], out, mode=_ONNX_PAD_MODE[p.mode])


def batch_shape(g: GraphBuilder, x: str, rest: list[int]) -> str:
    """The shape (N, C, *rest) with x's own N and C, so it follows a dynamic batch."""
    nc = g.node("Slice", [g.node("Shape", [x])[0], g.const([0], "starts", np.int64), g.const([2], "ends", np.int64)])[0]
    return g.node("Concat", [nc, g.const(rest, "rest", np.int64)], axis=0)[0]


@MAPPINGS.register("MaxUnPool")
def max_unpool(layer: Layer, g: GraphBuilder) -> None:
    """Zeros of (N, C, dst_h, dst_w), then top[n, c].flat[int(mask[n, c, i])] = bottom[n, c].flat[i]: ScatterElements.

    Source: brocolli caffe src/caffe/layers/maxunpool_layer.cpp
    Limits: mask values are data: an index >= dst_h*dst_w aborts Caffe
    and onnxruntime's ScatterElements rejects it, a negative one (UB in Caffe) counts from the end in
    ONNX. A repeated index (overlapping pooling windows) keeps the last value in Caffe, which ONNX
    leaves to the runtime: onnxruntime and OpenVINO were checked to agree (test_extra.py).
    """
    scatter_plane(g, layer.inputs[0], layer.inputs[1], layer.input_shapes[0], layer.output_shapes[0],
                  layer.outputs[0])


def scatter_plane(g: GraphBuilder, x: str, mask: str, in_shape, out_shape, out: str) -> None:
    """out = zeros(out_shape); out[n, c].flat[int(mask[n, c, i])] = x[n, c].flat[i] (later i win)."""
    n, c, h, w = in_shape
    flat = g.reshape(x, [n, c, h * w])
    # Caffe's static_cast<int> truncates toward zero; Cast float -> int64 does too.
    index = g.reshape(g.node("Cast", [mask], to=TensorProto.INT64)[0], [n, c, h * w])
    zeros = g.node("ConstantOfShape", [batch_shape(g, flat, [out_shape[2] * out_shape[3]])],
                   value=numpy_helper.from_array(np.zeros(1, np.float32)))[0]
    scattered = g.node("ScatterElements", [zeros, index, flat], axis=2)[0]
    g.reshape(scattered, list(out_shape), [out])


@MAPPINGS.register("BatchNormKyle")
def batch_norm_kyle(layer: Layer, g: GraphBuilder) -> None:
    """BatchNorm's (x - mean/f) / sqrt(var/f + eps) (f the stored factor), then * alpha + beta with use_alpha_beta.

    Source: brocolli caffe src/caffe/layers/batch_norm_kyle_layer.cpp
    Limits: none (use_global_stats false normalises with the batch's own statistics, as Caffe).
    """
    bn = MAPPINGS.get("BatchNorm").fn
    if not layer.params.use_alpha_beta:
        bn(layer, g)
        return
    normed = g.fresh("normalized")
    bn(dataclasses.replace(layer, outputs=(normed,)), g)
    per_channel = (-1,) + (1,) * (len(layer.input_shapes[0]) - 2)
    scaled = g.node("Mul", [normed, g.weight(3, layer.weights[3].reshape(per_channel))])[0]
    g.node("Add", [scaled, g.weight(4, layer.weights[4].reshape(per_channel))], list(layer.outputs))
