"""ReLU6, HardSwish and HardSigmoid as the reference Caffe's Forward_cpu computes them, in float32."""
from __future__ import annotations

import numpy as np

from ...ir import Layer
from .registry import FORWARDS

f32 = np.float32


@FORWARDS.register("ReLU6")
def relu6(layer: Layer, xs: list[np.ndarray]) -> list[np.ndarray]:
    """min(max(x, 0) + negative_slope * min(x, 0), threshold)."""
    x, p = xs[0].astype(f32, copy=False), layer.params
    y = np.maximum(x, f32(0)) + f32(p.negative_slope) * np.minimum(x, f32(0))
    return [np.minimum(y, f32(p.threshold))]


@FORWARDS.register("HardSwish")
def hardswish(layer: Layer, xs: list[np.ndarray]) -> list[np.ndarray]:
    """x * max(0, min(1, x / 6 + 0.5))."""
    x = xs[0].astype(f32, copy=False)
    return [x * np.maximum(f32(0), np.minimum(f32(1), x / f32(6) + f32(0.5)))]


@FORWARDS.register("HardSigmoid")
def hardsigmoid(layer: Layer, xs: list[np.ndarray]) -> list[np.ndarray]:
    """max(0, min(1, x * alpha + beta)), alpha and beta as float."""
    x, p = xs[0].astype(f32, copy=False), layer.params
    return [np.maximum(f32(0), np.minimum(f32(1), x * f32(p.alpha) + f32(p.beta)))]
