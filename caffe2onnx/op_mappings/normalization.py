"""Normalisation and affine layers: BatchNorm, Scale, Bias, MVN."""
from __future__ import annotations

import numpy as np

from ..ir import Layer
from .registry import MAPPINGS, BuildOptions, GraphBuilder


@MAPPINGS.register("BatchNorm")
def batch_norm(layer: Layer, g: GraphBuilder) -> None:
    """(x - mean) / sqrt(var + eps) per channel (axis 1): stored stats / factor, or the batch's own."""
    p = layer.params
    shape = layer.input_shapes[0]
    x = layer.inputs[0]
    if not p.use_global_stats:
        # Caffe normalises with this batch's statistics over every axis but the channels.
        axes = [0, *range(2, len(shape))]
        centred = g.node("Sub", [x, g.reduce("ReduceMean", x, axes)])[0]
        square = g.node("Mul", [centred, centred])[0]
        var = g.node("Add", [g.reduce("ReduceMean", square, axes), g.const(np.float32(p.eps), "eps")])[0]
        g.node("Div", [centred, g.node("Sqrt", [var])[0]], list(layer.outputs))
        return
    # Caffe's float32 steps: stats * (1 / factor) (factor 0 -> 0), var + eps, sqrt; then
    # (x - mean) / std becomes x * (1 / std) + (-mean / std), both constants rounded once
    # from float64: one per-channel Mul + Add, which onnxruntime folds into a preceding Conv.
    factor = np.float32(layer.weights[2].reshape(-1)[0])
    scale = np.float32(0) if factor == 0 else np.float32(1) / factor
    mean = (layer.weights[0].astype(np.float32) * scale).astype(np.float64)
    std = np.sqrt(layer.weights[1].astype(np.float32) * scale + np.float32(p.eps)).astype(np.float64)
    per_channel = (-1,) + (1,) * max(len(shape) - 2, 0)
    multiplier = (1.0 / std).astype(np.float32).reshape(per_channel)
    shift = (-mean / std).astype(np.float32).reshape(per_channel)
    scaled = g.node("Mul", [x, g.weight(0, multiplier)])[0]
    g.node("Add", [scaled, g.weight(1, shift)], list(layer.outputs))


def _param_shape(layer: Layer) -> tuple[int, ...]:
    """The parameter's shape padded with trailing 1s so it broadcasts over axes [axis, axis+n)."""
    p = layer.params
    shape = layer.input_shapes[0]
    if p.num_axes == 0:
        return ()
    return (*shape[p.axis:p.axis + p.num_axes], *(1,) * (len(shape) - p.axis - p.num_axes))


def _second_bottom(layer: Layer, g: GraphBuilder) -> str:
    p = layer.params
    trailing = len(layer.input_shapes[0]) - p.axis - p.num_axes
    if p.num_axes == 0 or trailing == 0:
        return layer.inputs[1]
    return g.unsqueeze(layer.inputs[1], list(range(p.num_axes, p.num_axes + trailing)))


def _batch_axis_check(field: str):
    def check(layer: Layer, options: BuildOptions) -> str | None:
        p = layer.params
        has_blob = not p.second_bottom or p.bias_term
        if options.dynamic_batch and has_blob and p.axis == 0 and p.num_axes > 0:
            return (f"field {field}.axis: a parameter blob spanning axis 0 (the batch) has a fixed "
                    "batch size, which --dynamic-batch cannot honour")
        return None
    return check


@MAPPINGS.register("Scale", check=_batch_axis_check("scale_param"))
def scale(layer: Layer, g: GraphBuilder) -> None:
    """y = x * s (+ b), s (a blob or bottom 1) and b covering axes [axis, axis+num_axes)."""
    p = layer.params
    pshape = _param_shape(layer)
    if p.second_bottom:
        s, bias_index = _second_bottom(layer, g), 0
    else:
        s, bias_index = g.weight(0, layer.weights[0].reshape(pshape)), 1
    if not p.bias_term:
        g.node("Mul", [layer.inputs[0], s], list(layer.outputs))
        return
    y = g.node("Mul", [layer.inputs[0], s])[0]
    b = g.weight(bias_index, layer.weights[bias_index].reshape(pshape))
    g.node("Add", [y, b], list(layer.outputs))


@MAPPINGS.register("Bias", check=_batch_axis_check("bias_param"))
def bias(layer: Layer, g: GraphBuilder) -> None:
    """y = x + b, b (a blob or bottom 1) covering axes [axis, axis+num_axes)."""
    p = layer.params
    b = _second_bottom(layer, g) if p.second_bottom else g.weight(0, layer.weights[0].reshape(_param_shape(layer)))
    g.node("Add", [layer.inputs[0], b], list(layer.outputs))


@MAPPINGS.register("MVN")
def mvn(layer: Layer, g: GraphBuilder) -> None:
    """x - mean over (H, W) or (C, H, W); divided by (std + eps) when normalize_variance; 4-D top."""
    p = layer.params
    axes = [1, 2, 3] if p.across_channels else [2, 3]
    x = layer.inputs[0]
    ndim = len(layer.input_shapes[0])
    if ndim < 4:  # Caffe treats missing trailing axes as 1 and writes a 4-D top
        x = g.unsqueeze(x, list(range(ndim, 4)))
    if not p.normalize_variance:
        g.node("Sub", [x, g.reduce("ReduceMean", x, axes)], list(layer.outputs))
        return
    centred = g.node("Sub", [x, g.reduce("ReduceMean", x, axes)])[0]
    square = g.node("Mul", [centred, centred])[0]
    std = g.node("Sqrt", [g.reduce("ReduceMean", square, axes)])[0]
    # Caffe adds eps to the standard deviation, not to the variance.
    denom = g.node("Add", [std, g.const(np.float32(p.eps), "eps")])[0]
    g.node("Div", [centred, denom], list(layer.outputs))
