"""Shape-moving and combining layers: InnerProduct, Concat, Slice, Split, Flatten, Reshape,
Eltwise, Softmax, Crop, Permute."""
from __future__ import annotations

import math

import numpy as np

from ...ir import Layer
from .registry import FORWARDS


@FORWARDS.register("InnerProduct")
def inner_product(layer: Layer, xs: list[np.ndarray]) -> list[np.ndarray]:
    """x.reshape(M, K) @ W.T (W.T stored when transpose) + b, K = prod(shape[axis:]), in float64."""
    p = layer.params
    x = xs[0]
    m = math.prod(x.shape[:p.axis])
    w = layer.weights[0].astype(np.float64)
    y = x.reshape(m, -1).astype(np.float64) @ (w if p.transpose else w.T)
    if p.bias_term:
        y += layer.weights[1].astype(np.float64)
    return [y.reshape(layer.output_shapes[0]).astype(np.float32)]


@FORWARDS.register("Concat")
def concat(layer: Layer, xs: list[np.ndarray]) -> list[np.ndarray]:
    """Bottoms joined along axis."""
    return [np.concatenate(xs, axis=layer.params.axis)]


@FORWARDS.register("Slice")
def slice_(layer: Layer, xs: list[np.ndarray]) -> list[np.ndarray]:
    """The bottom cut along axis at the (resolved) slice points."""
    return [a.copy() for a in np.split(xs[0], list(layer.params.points), axis=layer.params.axis)]


@FORWARDS.register("Split")
def split(layer: Layer, xs: list[np.ndarray]) -> list[np.ndarray]:
    """Every top is a copy of the bottom."""
    return [xs[0].copy() for _ in layer.outputs]


@FORWARDS.register("Flatten")
def flatten(layer: Layer, xs: list[np.ndarray]) -> list[np.ndarray]:
    """Axes axis..end_axis collapsed into one (row-major data unchanged)."""
    return [xs[0].reshape(layer.output_shapes[0]).copy()]


@FORWARDS.register("Reshape")
def reshape(layer: Layer, xs: list[np.ndarray]) -> list[np.ndarray]:
    """Same data, the shape Caffe's 0/-1 rules resolved to."""
    return [xs[0].reshape(layer.params.dims).copy()]


@FORWARDS.register("Eltwise")
def eltwise(layer: Layer, xs: list[np.ndarray]) -> list[np.ndarray]:
    """PROD, SUM (top = 0, then top += coeff_i * x_i) or MAX; in place, SUM and MAX read bottom 0 as the fill."""
    p = layer.params
    xs = [x.astype(np.float32, copy=False) for x in xs]
    # Caffe only lets top 0 alias bottom 0. SUM and MAX fill the top (0 / -FLT_MAX) before
    # reading the bottoms, so bottom 0 then reads as that fill; PROD reads it before writing.
    in_place = layer.bottoms[0] == layer.tops[0]
    if p.operation == "PROD":
        y = xs[0] * xs[1]
        for x in xs[2:]:
            y = y * x
    elif p.operation == "MAX":
        first = np.full_like(xs[0], -np.finfo(np.float32).max) if in_place else xs[0]
        y = np.maximum(first, xs[1])
        for x in xs[2:]:
            y = np.maximum(y, x)
    else:
        y = np.zeros_like(xs[0])
        for i, (c, x) in enumerate(zip(p.coeffs, xs)):
            if not (in_place and i == 0):  # in place, bottom 0 adds coeff * 0
                y = np.float32(c) * x + y
    return [y]


@FORWARDS.register("Softmax")
def softmax(layer: Layer, xs: list[np.ndarray]) -> list[np.ndarray]:
    """exp(x - max) / sum(exp(x - max)) along axis; exp in float32 as Caffe, the sum kept exact."""
    axis = layer.params.axis
    x = xs[0].astype(np.float32, copy=False)
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return [e / e.sum(axis=axis, keepdims=True, dtype=np.float64).astype(np.float32)]


@FORWARDS.register("Crop")
def crop(layer: Layer, xs: list[np.ndarray]) -> list[np.ndarray]:
    """Bottom 0 cut to bottom 1's shape from axis on, starting at the offsets."""
    p = layer.params
    big, ref = xs
    index = [slice(None)] * p.axis + [slice(o, o + ref.shape[p.axis + i]) for i, o in enumerate(p.offsets)]
    return [big[tuple(index)].copy()]


@FORWARDS.register("Permute")
def permute(layer: Layer, xs: list[np.ndarray]) -> list[np.ndarray]:
    """Axes reordered to the (completed) order."""
    return [np.ascontiguousarray(np.transpose(xs[0], layer.params.order))]
