"""The rest of BVLC's inference layers: ArgMax, Reduction, Tile, Embed, SPP, Parameter, Im2col,
BatchReindex, Clip, Swish."""
from __future__ import annotations

import dataclasses
import math

import numpy as np
from ..onnx_lite import TensorProto  # not `import onnx`: see onnx_lite

from ..ir import Layer
from .registry import MAPPINGS, GraphBuilder

_I64 = np.int64


@MAPPINGS.register("ArgMax")
def argmax(layer: Layer, g: GraphBuilder) -> None:
    """Top-k indices (as floats) and/or values along axis (or over count(1)); ties: the higher index first.

    Limits: NaN inputs order as Caffe's std::partial_sort leaves them only by chance; not reproduced.
    """
    p = layer.params
    shape = layer.input_shapes[0]
    x, axis = layer.inputs[0], p.axis
    if axis is None:
        x, axis = g.reshape(x, [shape[0], math.prod(shape[1:])]), 1
    dim = shape[axis] if p.axis is not None else math.prod(shape[1:])
    # Caffe sorts (value, index) pairs with std::greater: equal values put the higher index first.
    # ONNX TopK puts the lower index first, so TopK runs on the reversed axis and maps indices back.
    rev = g.node("Slice", [x, g.const([-1], "starts", _I64), g.const([-dim - 1], "ends", _I64),
                           g.const([axis], "axes", _I64), g.const([-1], "steps", _I64)])[0]
    values, rev_idx = g.node("TopK", [rev, g.const([p.top_k], "k", _I64)], 2, axis=axis, largest=1, sorted=1)
    idx = g.node("Sub", [g.const(np.array(dim - 1, _I64), "last"), rev_idx])[0]
    out = list(layer.outputs)
    if p.axis is not None:
        if p.out_max_val:
            g.node("Identity", [values], out)
        else:
            g.node("Cast", [idx], out, to=TensorProto.FLOAT)
        return
    fidx = g.node("Cast", [idx], 1, to=TensorProto.FLOAT)[0]
    both = g.node("Concat", [fidx, values], 1, axis=1)[0] if p.out_max_val else fidx  # [indices, values]
    g.reshape(both, list(layer.output_shapes[0]), out)


_REDUCE = {"SUM": "ReduceSum", "ASUM": "ReduceL1", "SUMSQ": "ReduceSumSquare", "MEAN": "ReduceSum"}


@MAPPINGS.register("Reduction")
def reduction(layer: Layer, g: GraphBuilder) -> None:
    """coeff * (sum, sum |x|, sum x^2, or sum / dim) over all axes from axis on; top shape[:axis]."""
    p = layer.params
    shape = layer.input_shapes[0]
    outer, dim = math.prod(shape[:p.axis]), math.prod(shape[p.axis:])
    x = g.reshape(layer.inputs[0], [outer, dim])
    y = g.reduce(_REDUCE[p.operation], x, [1], keepdims=False)
    # Caffe folds MEAN's 1/dim into coeff (in float) and scales the sums once.
    coeff = np.float32(p.coeff) / np.float32(dim) if p.operation == "MEAN" else np.float32(p.coeff)
    if coeff != 1:
        y = g.node("Mul", [y, g.const(coeff, "coeff")])[0]
    g.reshape(y, list(layer.output_shapes[0]), list(layer.outputs))


@MAPPINGS.register("Tile")
def tile(layer: Layer, g: GraphBuilder) -> None:
    """The bottom repeated `tiles` times along axis."""
    reps = [1] * len(layer.input_shapes[0])
    reps[layer.params.axis] = layer.params.tiles
    g.node("Tile", [layer.inputs[0], g.const(reps, "repeats", _I64)], list(layer.outputs))


@MAPPINGS.register("Embed")
def embed(layer: Layer, g: GraphBuilder) -> None:
    """W[int(x)] (+ b): a row of W (input_dim, num_output) per entry, index truncated toward zero.

    Limits: indices outside [0, input_dim) are undefined behaviour in Caffe (no check in a release
    build); onnxruntime rejects them.
    """
    idx = g.node("Cast", [layer.inputs[0]], 1, to=TensorProto.INT64)[0]
    out = list(layer.outputs)
    if not layer.params.bias_term:
        g.node("Gather", [g.weight(0), idx], out, axis=0)
        return
    rows = g.node("Gather", [g.weight(0), idx], 1, axis=0)[0]
    g.node("Add", [rows, g.weight(1)], out)


@MAPPINGS.register("SPP")
def spp(layer: Layer, g: GraphBuilder) -> None:
    """Level i: Caffe pooling into 2^i x 2^i bins (kernel ceil(H/2^i), stride = kernel), flattened; concatenated."""
    p = layer.params
    pooling = MAPPINGS.get("Pooling").fn
    n = layer.input_shapes[0][0]
    flat = []
    for level, shape in zip(p.levels, p.level_shapes):
        out = list(layer.outputs) if p.height == 1 else [g.fresh("pool")]
        pooling(dataclasses.replace(layer, type="Pooling", params=level, outputs=tuple(out),
                                    output_shapes=(shape,)), g)
        if p.height > 1:
            flat.append(g.reshape(out[0], [n, math.prod(shape[1:])]))
    if flat:
        g.node("Concat", flat, list(layer.outputs), axis=1)


def _static_batch(layer: Layer, options) -> str | None:
    if options.dynamic_batch:
        return "its top is a fixed blob whose first axis is not the batch: --dynamic-batch is not supported"
    return None


@MAPPINGS.register("Parameter", check=_static_batch)
def parameter(layer: Layer, g: GraphBuilder) -> None:
    """The layer's blob 0 as its top."""
    g.node("Identity", [g.weight(0)], list(layer.outputs))


@MAPPINGS.register("Im2col")
def im2col(layer: Layer, g: GraphBuilder) -> None:
    """Caffe's column buffer (N, C*kh*kw, oh, ow): one strided slice of the zero-padded input per kernel tap."""
    p = layer.params
    n, c, _, _ = layer.input_shapes[0]
    oh, ow = layer.output_shapes[0][2:]
    x = layer.inputs[0]
    if any(p.pad):  # exact copies, no arithmetic: a Conv with a one-hot kernel would turn inf into NaN
        pads = [0, 0, p.pad[0], p.pad[1], 0, 0, p.pad[0], p.pad[1]]
        x = g.node("Pad", [x, g.const(pads, "pads", _I64), g.const(np.float32(0), "zero")], 1, mode="constant")[0]
    taps = []
    for i in range(p.kernel[0]):
        for j in range(p.kernel[1]):
            starts = [i * p.dilation[0], j * p.dilation[1]]
            ends = [starts[0] + p.stride[0] * (oh - 1) + 1, starts[1] + p.stride[1] * (ow - 1) + 1]
            tap = g.node("Slice", [x, g.const(starts, "starts", _I64), g.const(ends, "ends", _I64),
                                   g.const([2, 3], "axes", _I64), g.const(list(p.stride), "steps", _I64)])[0]
            taps.append(g.unsqueeze(tap, [2]))
    cols = g.node("Concat", taps, 1, axis=2)[0] if len(taps) > 1 else taps[0]  # (N, C, kh*kw, oh, ow)
    g.reshape(cols, [n, c * len(taps), oh, ow], list(layer.outputs))


@MAPPINGS.register("BatchReindex")
def batch_reindex(layer: Layer, g: GraphBuilder) -> None:
    """top[i] = bottom0[int(bottom1[i])].

    Limits: Caffe aborts on an index that is out of range or not an integer; onnxruntime rejects
    the former and truncates the latter.
    """
    idx = g.node("Cast", [layer.inputs[1]], 1, to=TensorProto.INT64)[0]
    g.node("Gather", [layer.inputs[0], idx], list(layer.outputs), axis=0)


@MAPPINGS.register("Clip")
def clip(layer: Layer, g: GraphBuilder) -> None:
    """max(min, min(x, max)): NaN gives min, and min > max gives min everywhere.

    Source: BVLC master, clip_layer.cpp (not in every Caffe build)
    """
    p = layer.params
    x, out = layer.inputs[0], list(layer.outputs)
    lo = g.const(np.float32(p.min), "min")
    if p.min > p.max:  # std::max(min, std::min(x, max)) with max < min is min, NaN or not
        g.node("Expand", [lo, g.node("Shape", [x])[0]], out)
        return
    clipped = g.node("Clip", [x, lo, g.const(np.float32(p.max), "max")])[0]
    # std::min(NaN, max) is NaN and std::max(min, NaN) is min: Caffe maps NaN to min.
    g.node("Where", [g.node("IsNaN", [x])[0], lo, clipped], out)


@MAPPINGS.register("Swish")
def swish(layer: Layer, g: GraphBuilder) -> None:
    """x * sigmoid(beta * x).

    Source: BVLC master, swish_layer.cpp (not in every Caffe build)
    """
    x = layer.inputs[0]
    z = x if layer.params.beta == 1 else g.node("Mul", [x, g.const(np.float32(layer.params.beta), "beta")])[0]
    g.node("Mul", [x, g.node("Sigmoid", [z])[0]], list(layer.outputs))
