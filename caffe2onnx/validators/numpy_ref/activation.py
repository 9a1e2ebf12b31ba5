"""Element-wise layers, each computed as Caffe's Forward_cpu does, step by step in float32."""
from __future__ import annotations

import math

import numpy as np

from ...ir import Layer
from .registry import FORWARDS

f32 = np.float32


def _x(xs: list[np.ndarray]) -> np.ndarray:
    return xs[0].astype(np.float32, copy=False)


@FORWARDS.register("ReLU")
def relu(layer: Layer, xs: list[np.ndarray]) -> list[np.ndarray]:
    """max(x, 0) + negative_slope * min(x, 0)."""
    x = _x(xs)
    return [np.maximum(x, f32(0)) + f32(layer.params.negative_slope) * np.minimum(x, f32(0))]


@FORWARDS.register("Sigmoid")
def sigmoid(layer: Layer, xs: list[np.ndarray]) -> list[np.ndarray]:
    """0.5 * tanh(0.5 * x) + 0.5 (= 1 / (1 + exp(-x)), without overflow)."""
    return [f32(0.5) * np.tanh(f32(0.5) * _x(xs)) + f32(0.5)]


@FORWARDS.register("TanH")
def tanh(layer: Layer, xs: list[np.ndarray]) -> list[np.ndarray]:
    """tanh(x)."""
    return [np.tanh(_x(xs))]


@FORWARDS.register("AbsVal")
def absval(layer: Layer, xs: list[np.ndarray]) -> list[np.ndarray]:
    """|x|."""
    return [np.abs(_x(xs))]


@FORWARDS.register("BNLL")
def bnll(layer: Layer, xs: list[np.ndarray]) -> list[np.ndarray]:
    """x + log(1 + exp(-x)) for x > 0, else log(1 + exp(x)); Caffe's 1. makes it double precision."""
    x = _x(xs).astype(np.float64)
    return [np.where(x > 0, x + np.log1p(np.exp(-np.abs(x))), np.log1p(np.exp(-np.abs(x)))).astype(f32)]


@FORWARDS.register("Dropout")
def dropout(layer: Layer, xs: list[np.ndarray]) -> list[np.ndarray]:
    """Identity at TEST time."""
    return [_x(xs).copy()]


@FORWARDS.register("ELU")
def elu(layer: Layer, xs: list[np.ndarray]) -> list[np.ndarray]:
    """max(x, 0) + alpha * (exp(min(x, 0)) - 1)."""
    x = _x(xs)
    return [np.maximum(x, f32(0)) + f32(layer.params.alpha) * (np.exp(np.minimum(x, f32(0))) - f32(1))]


@FORWARDS.register("Power")
def power(layer: Layer, xs: list[np.ndarray]) -> list[np.ndarray]:
    """(shift + scale * x) ^ power; a constant when power * scale == 0 (1 if power == 0, else shift^power)."""
    p = layer.params
    x = _x(xs)
    if f32(p.power) * f32(p.scale) == 0:
        value = f32(1) if p.power == 0 else np.power(f32(p.shift), f32(p.power))
        return [np.full_like(x, value)]
    y = x if p.scale == 1 else f32(p.scale) * x
    if p.shift != 0:
        y = y + f32(p.shift)
    return [y if p.power == 1 else np.power(y, f32(p.power))]


@FORWARDS.register("Exp")
def exp(layer: Layer, xs: list[np.ndarray]) -> list[np.ndarray]:
    """exp(log(base) * scale * x) * base^shift, with base -1 meaning e (log_base = 1 exactly)."""
    p = layer.params
    x = _x(xs)
    log_base = f32(1) if p.base == -1 else f32(math.log(f32(p.base)))
    inner = log_base * f32(p.scale)
    y = np.exp(x) if inner == 1 else np.exp(inner * x)
    if p.shift != 0:
        outer = f32(math.exp(f32(p.shift))) if p.base == -1 else f32(math.pow(f32(p.base), f32(p.shift)))
        if outer != 1:
            y = y * outer
    return [y]


@FORWARDS.register("Log")
def log(layer: Layer, xs: list[np.ndarray]) -> list[np.ndarray]:
    """log(shift + scale * x) / log(base), with base -1 meaning e."""
    p = layer.params
    y = _x(xs)
    if p.scale != 1:
        y = f32(p.scale) * y
    if p.shift != 0:
        y = y + f32(p.shift)
    y = np.log(y)
    base_scale = f32(1) if p.base == -1 else f32(1) / f32(math.log(f32(p.base)))
    return [y if base_scale == 1 else base_scale * y]


@FORWARDS.register("Threshold")
def threshold(layer: Layer, xs: list[np.ndarray]) -> list[np.ndarray]:
    """1 where x > threshold, else 0."""
    return [(_x(xs) > f32(layer.params.threshold)).astype(f32)]


@FORWARDS.register("PReLU")
def prelu(layer: Layer, xs: list[np.ndarray]) -> list[np.ndarray]:
    """max(x, 0) + a * min(x, 0), a one slope per channel (axis 1) or one shared slope."""
    x = _x(xs)
    a = layer.weights[0].astype(f32)
    if layer.params.channel_shared:
        a = a.reshape(())
    else:
        a = a.reshape((1, -1) + (1,) * (x.ndim - 2))
    return [np.maximum(x, f32(0)) + a * np.minimum(x, f32(0))]
