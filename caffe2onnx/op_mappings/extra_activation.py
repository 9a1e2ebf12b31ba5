"""The reference Caffe's extra element-wise layers: ReLU6, HardSwish, HardSigmoid."""
from __future__ import annotations

import numpy as np

from ..ir import Layer
from .registry import MAPPINGS, GraphBuilder


def _clip(g: GraphBuilder, x: str, lo: float | None, hi: float | None, out: list[str] | int = 1) -> str:
    """Clip with min/max as inputs (opset 11+); an absent bound is an empty input name."""
    lo_name = "" if lo is None else g.const(np.float32(lo), "min")
    hi_name = "" if hi is None else g.const(np.float32(hi), "max")
    return g.node("Clip", [x, lo_name, hi_name], out)[0]


@MAPPINGS.register("ReLU6")
def relu6(layer: Layer, g: GraphBuilder) -> None:
    """min(max(x, 0) + negative_slope * min(x, 0), threshold): (Leaky)Relu then Clip from above.

    Source: brocolli caffe src/caffe/layers/relu6_layer.cpp
    Limits: none (any slope and threshold, also negative ones, as Caffe computes them).
    """
    p = layer.params
    x = layer.inputs[0]
    if p.negative_slope == 0:
        r = g.node("Relu", [x])[0]
    else:
        r = g.node("LeakyRelu", [x], alpha=p.negative_slope)[0]
    _clip(g, r, None, p.threshold, list(layer.outputs))


@MAPPINGS.register("HardSwish")
def hardswish(layer: Layer, g: GraphBuilder) -> None:
    """x * max(0, min(1, x / 6 + 0.5)); a Div by 6 as Caffe (ONNX HardSwish multiplies by 1/6).

    Source: brocolli caffe src/caffe/layers/hardswish_layer.cpp
    Limits: none.
    """
    x = layer.inputs[0]
    t = g.node("Div", [x, g.const(np.float32(6), "six")])[0]
    t = g.node("Add", [t, g.const(np.float32(0.5), "half")])[0]
    g.node("Mul", [x, _clip(g, t, 0.0, 1.0)], list(layer.outputs))


@MAPPINGS.register("HardSigmoid")
def hardsigmoid(layer: Layer, g: GraphBuilder) -> None:
    """max(0, min(1, alpha * x + beta)): ONNX HardSigmoid, the same formula in float32.

    Source: brocolli caffe src/caffe/layers/hardsigmoid_layer.cpp
    Limits: none.
    """
    p = layer.params
    g.node("HardSigmoid", list(layer.inputs), list(layer.outputs), alpha=p.alpha, beta=p.beta)
