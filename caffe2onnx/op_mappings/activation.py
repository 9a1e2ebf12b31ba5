"""Element-wise layers: ReLU, Sigmoid, TanH, Dropout, Split, PReLU, ELU, AbsVal, BNLL, Power,
Exp, Log, Threshold."""
from __future__ import annotations

import math

import numpy as np
from ..onnx_lite import TensorProto

from ..ir import Layer
from .registry import MAPPINGS, BuildOptions, GraphBuilder


@MAPPINGS.register("ReLU")
def relu(layer: Layer, g: GraphBuilder) -> None:
    """max(x, 0) + negative_slope * min(x, 0): Relu, or LeakyRelu when the slope is non-zero."""
    slope = layer.params.negative_slope
    if slope == 0:
        g.node("Relu", list(layer.inputs), list(layer.outputs))
    else:
        g.node("LeakyRelu", list(layer.inputs), list(layer.outputs), alpha=slope)


@MAPPINGS.register("Sigmoid")
def sigmoid(layer: Layer, g: GraphBuilder) -> None:
    """1 / (1 + exp(-x))."""
    g.node("Sigmoid", list(layer.inputs), list(layer.outputs))


@MAPPINGS.register("TanH")
def tanh(layer: Layer, g: GraphBuilder) -> None:
    """tanh(x)."""
    g.node("Tanh", list(layer.inputs), list(layer.outputs))


@MAPPINGS.register("Dropout")
def dropout(layer: Layer, g: GraphBuilder) -> None:
    """Identity: Caffe's Dropout passes data through unchanged at TEST time."""
    g.node("Identity", list(layer.inputs), list(layer.outputs))


@MAPPINGS.register("Split")
def split(layer: Layer, g: GraphBuilder) -> None:
    """Every top is a copy of the bottom."""
    for out in layer.outputs:
        g.node("Identity", [layer.inputs[0]], [out])


@MAPPINGS.register("PReLU")
def prelu(layer: Layer, g: GraphBuilder) -> None:
    """max(x, 0) + a * min(x, 0): one shared slope, or one per channel (axis 1)."""
    slope = layer.weights[0]
    if not layer.params.channel_shared:
        slope = slope.reshape((-1,) + (1,) * (len(layer.input_shapes[0]) - 2))
    else:
        slope = slope.reshape((1,))
    g.node("PRelu", [layer.inputs[0], g.weight(0, slope)], list(layer.outputs))


@MAPPINGS.register("ELU")
def elu(layer: Layer, g: GraphBuilder) -> None:
    """x if x > 0 else alpha * (exp(x) - 1)."""
    g.node("Elu", list(layer.inputs), list(layer.outputs), alpha=layer.params.alpha)


@MAPPINGS.register("AbsVal")
def absval(layer: Layer, g: GraphBuilder) -> None:
    """|x|."""
    g.node("Abs", list(layer.inputs), list(layer.outputs))


@MAPPINGS.register("BNLL")
def bnll(layer: Layer, g: GraphBuilder) -> None:
    """log(1 + exp(x)) in Caffe's stable form: max(x, 0) + log(1 + exp(-|x|))."""
    x = layer.inputs[0]
    neg_abs = g.node("Neg", [g.node("Abs", [x])[0]])[0]
    one_plus = g.node("Add", [g.node("Exp", [neg_abs])[0], g.const(np.float32(1), "one")])[0]
    g.node("Add", [g.node("Relu", [x])[0], g.node("Log", [one_plus])[0]], list(layer.outputs))


@MAPPINGS.register("Power")
def power(layer: Layer, g: GraphBuilder) -> None:
    """(shift + scale * x) ^ power; constant 1 (power 0) or shift ^ power (scale 0), as Caffe."""
    p = layer.params
    x, out = layer.inputs[0], list(layer.outputs)
    if np.float32(p.power) * np.float32(p.scale) == 0:
        # Caffe ignores the input here, so even NaN or inf inputs give the constant.
        with np.errstate(all="ignore"):  # 0 ^ -1 = inf and (-1) ^ 0.5 = NaN, as in Caffe
            value = np.float32(1) if p.power == 0 else np.power(np.float32(p.shift), np.float32(p.power))
        g.node("Expand", [g.const(value, "value"), g.node("Shape", [x])[0]], out)
        return
    steps = []
    if p.scale != 1:
        steps.append(("Mul", p.scale))
    if p.shift != 0:
        steps.append(("Add", p.shift))
    if p.power != 1:
        steps.append(("Pow", p.power))
    _chain(g, x, steps, out)


def _chain(g: GraphBuilder, x: str, steps: list[tuple[str, float]], out: list[str]) -> None:
    """Applies (op, scalar) steps in order; the last writes ``out`` (Identity if none)."""
    if not steps:
        g.node("Identity", [x], out)
    for i, (op, value) in enumerate(steps):
        operands = [x] if value is None else [x, g.const(np.float32(value), op.lower())]
        x = g.node(op, operands, out if i == len(steps) - 1 else 1)[0]


def _base_check(param: str):
    def check(layer: Layer, options: BuildOptions) -> str | None:
        base = layer.params.base
        if not math.isfinite(base):
            return f"field {param}.base: {base} has an infinite logarithm (Caffe rejects it)"
        if param == "log_param" and base == 1:
            return "field log_param.base: 1 has logarithm 0, so 1 / log(base) is infinite (Caffe rejects it)"
        return None
    return check


@MAPPINGS.register("Exp", check=_base_check("exp_param"))
def exp(layer: Layer, g: GraphBuilder) -> None:
    """base ^ (shift + scale * x), computed like Caffe as base^shift * exp(scale * ln(base) * x)."""
    p = layer.params
    base, scale, shift = np.float32(p.base), np.float32(p.scale), np.float32(p.shift)
    with np.errstate(all="ignore"):  # overflow gives inf, as in Caffe's float arithmetic
        inner = scale if p.base == -1 else np.log(base) * scale
        outer = np.float32(1) if shift == 0 else np.exp(shift) if p.base == -1 else np.power(base, shift)
    steps = [("Mul", inner)] if inner != 1 else []
    steps.append(("Exp", None))
    if outer != 1:
        steps.append(("Mul", outer))
    _chain(g, layer.inputs[0], steps, list(layer.outputs))


@MAPPINGS.register("Log", check=_base_check("log_param"))
def log(layer: Layer, g: GraphBuilder) -> None:
    """log_base(shift + scale * x), computed like Caffe as ln(shift + scale * x) / ln(base)."""
    p = layer.params
    base_scale = np.float32(1) if p.base == -1 else np.float32(1) / np.log(np.float32(p.base))
    steps = []
    if p.scale != 1:
        steps.append(("Mul", p.scale))
    if p.shift != 0:
        steps.append(("Add", p.shift))
    steps.append(("Log", None))
    if base_scale != 1:
        steps.append(("Mul", base_scale))
    _chain(g, layer.inputs[0], steps, list(layer.outputs))


@MAPPINGS.register("Threshold")
def threshold(layer: Layer, g: GraphBuilder) -> None:
    """1 if x > threshold else 0."""
    above = g.node("Greater", [layer.inputs[0], g.const(np.float32(layer.params.threshold), "threshold")])[0]
    g.node("Cast", [above], list(layer.outputs), to=TensorProto.FLOAT)
