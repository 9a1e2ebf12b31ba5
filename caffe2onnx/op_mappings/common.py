"""Shape-moving and combining layers: InnerProduct, Concat, Flatten, Reshape, Slice, Crop,
Permute, Softmax, Eltwise."""
from __future__ import annotations

import numpy as np

from ..ir import Layer
from .registry import MAPPINGS, GraphBuilder


@MAPPINGS.register("InnerProduct")
def inner_product(layer: Layer, g: GraphBuilder) -> None:
    """y = x.reshape(outer, K) @ W.T + b, K = prod(shape[axis:]), W (N, K) or (K, N) if transpose."""
    p = layer.params
    shape = layer.input_shapes[0]
    k = int(np.prod(shape[p.axis:], dtype=np.int64))
    x = layer.inputs[0]
    bias = [g.weight(1)] if p.bias_term else []
    if p.axis == 1:
        # The classic case: a 2-D Gemm keeps the weight exactly as Caffe stores it.
        if len(shape) != 2:
            x = g.reshape(x, [shape[0], k])
        g.node("Gemm", [x, g.weight(0), *bias], list(layer.outputs), transB=0 if p.transpose else 1)
        return
    # Any other axis: keep the leading axes and contract the flattened tail with MatMul.
    if len(shape) != p.axis + 1:
        x = g.reshape(x, [*shape[:p.axis], k])
    w = layer.weights[0] if p.transpose else np.ascontiguousarray(layer.weights[0].T)
    if not bias:
        g.node("MatMul", [x, g.weight(0, w)], list(layer.outputs))
        return
    y = g.node("MatMul", [x, g.weight(0, w)])[0]
    g.node("Add", [y, bias[0]], list(layer.outputs))


@MAPPINGS.register("Concat")
def concat(layer: Layer, g: GraphBuilder) -> None:
    """Joins the bottoms along axis (legacy concat_dim) in bottom order."""
    g.node("Concat", list(layer.inputs), list(layer.outputs), axis=layer.params.axis)


@MAPPINGS.register("Flatten")
def flatten(layer: Layer, g: GraphBuilder) -> None:
    """Collapses axes [axis, end_axis] into one; the data order is unchanged."""
    _reshape(layer, g, list(layer.output_shapes[0]), 0)


@MAPPINGS.register("Reshape")
def reshape(layer: Layer, g: GraphBuilder) -> None:
    """Reshape to the resolved output shape (Caffe's 0 / -1 / axis / num_axes already applied)."""
    _reshape(layer, g, list(layer.params.dims), layer.params.batch_axis)


def _reshape(layer: Layer, g: GraphBuilder, dims: list[int], batch_axis: int | None) -> None:
    """With a dynamic batch, the one axis that carries it (kept at 0, or folded into another axis as
    Caffe's -1 or Flatten over axis 0 fold it) is inferred by ONNX's -1: every other axis is static."""
    kept = dims[:1] == list(layer.input_shapes[0][:1])  # a leading batch-sized axis stays the batch (copied)
    if not g.options.dynamic_batch or kept or batch_axis is None:  # None: refused by the converter's check
        g.reshape(layer.inputs[0], dims, list(layer.outputs))
        return
    dims[batch_axis] = -1
    g.node("Reshape", [layer.inputs[0], g.const(dims, "shape", np.int64)], list(layer.outputs))


@MAPPINGS.register("Slice")
def slice_(layer: Layer, g: GraphBuilder) -> None:
    """Cuts the bottom along axis at the slice points, one top per piece in order."""
    p = layer.params
    sizes = [s[p.axis] for s in layer.output_shapes]
    g.split(layer.inputs[0], p.axis, sizes, list(layer.outputs))


@MAPPINGS.register("Crop")
def crop(layer: Layer, g: GraphBuilder) -> None:
    """Bottom 0 cropped to bottom 1's shape on axes >= axis, starting at the offsets."""
    p = layer.params
    big, out = layer.input_shapes[0], layer.output_shapes[0]
    axes, starts, ends = [], [], []
    for i, off in enumerate(p.offsets):
        a = p.axis + i
        if off != 0 or out[a] != big[a]:  # untouched axes stay out, so a dynamic batch survives
            axes.append(a)
            starts.append(off)
            ends.append(off + out[a])
    if not axes:
        g.node("Identity", [layer.inputs[0]], list(layer.outputs))
        return
    ints = np.int64
    g.node("Slice", [layer.inputs[0], g.const(starts, "starts", ints), g.const(ends, "ends", ints),
                     g.const(axes, "axes", ints)], list(layer.outputs))


@MAPPINGS.register("Permute")
def permute(layer: Layer, g: GraphBuilder) -> None:
    """Transposes the axes into the given order (the SSD fork's Permute)."""
    g.node("Transpose", [layer.inputs[0]], list(layer.outputs), perm=list(layer.params.order))


@MAPPINGS.register("Softmax")
def softmax(layer: Layer, g: GraphBuilder) -> None:
    """exp(x - max) / sum(exp(x - max)) along one axis."""
    axis = layer.params.axis
    last = len(layer.input_shapes[0]) - 1
    if g.opset >= 13 or axis == last:
        g.node("Softmax", list(layer.inputs), list(layer.outputs), axis=axis)
        return
    # Before opset 13 Softmax normalises over all axes from `axis` on: swap the axis to the end.
    perm = list(range(last + 1))
    perm[axis], perm[last] = last, axis
    x = g.node("Transpose", list(layer.inputs), 1, perm=perm)[0]
    y = g.node("Softmax", [x], 1, axis=last)[0]
    g.node("Transpose", [y], list(layer.outputs), perm=perm)


@MAPPINGS.register("Eltwise")
def eltwise(layer: Layer, g: GraphBuilder) -> None:
    """PROD, MAX, or SUM of coeff_i * x_i, accumulated in bottom order exactly as Caffe does."""
    p = layer.params
    xs, coeffs = list(layer.inputs), list(p.coeffs)
    # In place (top = bottom 0, the only alias Caffe allows) SUM and MAX first fill the top with
    # 0 / -FLT_MAX and so read bottom 0 as that fill value; PROD reads it before writing.
    in_place = layer.bottoms[0] == layer.tops[0]
    if p.operation == "MAX":
        if in_place:
            xs[0] = g.const(np.float32(-np.finfo(np.float32).max), "fill")
        g.node("Max", xs, list(layer.outputs))
        return
    if p.operation == "SUM":
        if in_place:
            xs, coeffs = xs[1:], coeffs[1:]
        xs = [x if c == 1 else g.node("Mul", [x, g.const(np.float32(c), "coeff")])[0] for x, c in zip(xs, coeffs)]
    op = "Add" if p.operation == "SUM" else "Mul"
    acc = xs[0]
    for i, x in enumerate(xs[1:], start=2):
        acc = g.node(op, [acc, x], list(layer.outputs) if i == len(xs) else 1)[0]
    if len(xs) == 1:
        g.node("Identity", [acc], list(layer.outputs))
