"""The rest of BVLC's inference layers, as Caffe's CPU code computes them: ArgMax, Reduction,
Tile, Embed, SPP, Parameter, Im2col, BatchReindex, Clip, Swish."""
from __future__ import annotations

import dataclasses
import math

import numpy as np

from ...ir import Layer
from .registry import FORWARDS


def _caffe_topk(rows: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """std::partial_sort of (value, index) pairs with std::greater, per row: values, then the higher index."""
    dim = rows.shape[1]
    # A stable sort of the reversed row by descending value keeps equal values in reversed order.
    order = np.argsort(-rows[:, ::-1], axis=1, kind="stable")[:, :k]
    idx = dim - 1 - order
    return np.take_along_axis(rows, idx, axis=1), idx


@FORWARDS.register("ArgMax")
def argmax(layer: Layer, xs: list[np.ndarray]) -> list[np.ndarray]:
    """Top-k indices (as floats) or values along axis; without axis over count(1), [indices, values] per item."""
    p = layer.params
    x = xs[0]
    if p.axis is None:
        vals, idx = _caffe_topk(x.reshape(x.shape[0], -1), p.top_k)
        out = np.concatenate([idx, vals], axis=1) if p.out_max_val else idx
        return [out.astype(np.float32).reshape(layer.output_shapes[0])]
    moved = np.moveaxis(x, p.axis, -1)
    vals, idx = _caffe_topk(moved.reshape(-1, moved.shape[-1]), p.top_k)
    out = (vals if p.out_max_val else idx.astype(np.float32)).reshape(*moved.shape[:-1], p.top_k)
    return [np.ascontiguousarray(np.moveaxis(out, -1, p.axis)).astype(np.float32)]


@FORWARDS.register("Reduction")
def reduction(layer: Layer, xs: list[np.ndarray]) -> list[np.ndarray]:
    """Per outer item: dot(1, x), asum(x) or dot(x, x) over count(axis), then * coeff (MEAN: coeff / dim)."""
    p = layer.params
    x = xs[0].reshape(math.prod(xs[0].shape[:p.axis]), -1).astype(np.float64)
    y = {"SUM": x, "MEAN": x, "ASUM": np.abs(x), "SUMSQ": x * x}[p.operation].sum(axis=1).astype(np.float32)
    coeff = np.float32(p.coeff) / np.float32(x.shape[1]) if p.operation == "MEAN" else np.float32(p.coeff)
    if coeff != 1:
        y = y * coeff
    return [y.reshape(layer.output_shapes[0])]


@FORWARDS.register("Tile")
def tile(layer: Layer, xs: list[np.ndarray]) -> list[np.ndarray]:
    """Each outer slice copied `tiles` times along axis."""
    reps = [1] * xs[0].ndim
    reps[layer.params.axis] = layer.params.tiles
    return [np.tile(xs[0], reps)]


@FORWARDS.register("Embed")
def embed(layer: Layer, xs: list[np.ndarray]) -> list[np.ndarray]:
    """W[static_cast<int>(x)] (+ b); an index outside [0, input_dim) is refused (Caffe reads out of bounds)."""
    idx = np.trunc(xs[0]).astype(np.int64)
    if idx.size and (idx.min() < 0 or idx.max() >= layer.params.input_dim):
        raise ValueError(f"Embed layer '{layer.name}': index outside [0, {layer.params.input_dim})")
    y = layer.weights[0][idx]
    return [y + layer.weights[1] if layer.params.bias_term else y.copy()]


@FORWARDS.register("SPP")
def spp(layer: Layer, xs: list[np.ndarray]) -> list[np.ndarray]:
    """Caffe pooling per pyramid level, each flattened per item, concatenated (height 1: the pool itself)."""
    p = layer.params
    pooling = FORWARDS.get("Pooling").fn
    outs = [pooling(dataclasses.replace(layer, type="Pooling", params=level, output_shapes=(shape,)), xs)[0]
            for level, shape in zip(p.levels, p.level_shapes)]
    if p.height == 1:
        return outs
    return [np.concatenate([o.reshape(o.shape[0], -1) for o in outs], axis=1)]


@FORWARDS.register("Parameter")
def parameter(layer: Layer, xs: list[np.ndarray]) -> list[np.ndarray]:
    """The blob itself."""
    return [np.array(layer.weights[0], np.float32)]


@FORWARDS.register("Im2col")
def im2col(layer: Layer, xs: list[np.ndarray]) -> list[np.ndarray]:
    """Row (c*kh + i)*kw + j, column (y, x): x_padded[c, y*s + i*d, x*s + j*d], zero padding."""
    p = layer.params
    x = xs[0]
    (ph, pw), (sh, sw), (dh, dw) = p.pad, p.stride, p.dilation
    xp = np.pad(x, [(0, 0), (0, 0), (ph, ph), (pw, pw)])
    oh, ow = layer.output_shapes[0][2:]
    cols = [xp[:, :, i * dh:i * dh + sh * (oh - 1) + 1:sh, j * dw:j * dw + sw * (ow - 1) + 1:sw]
            for i in range(p.kernel[0]) for j in range(p.kernel[1])]
    return [np.stack(cols, axis=2).reshape(layer.output_shapes[0])]


@FORWARDS.register("BatchReindex")
def batch_reindex(layer: Layer, xs: list[np.ndarray]) -> list[np.ndarray]:
    """top[i] = bottom0[bottom1[i]]; Caffe CHECKs each index is an integer in [0, num)."""
    data, index = xs
    if not np.all((index == np.trunc(index)) & (index >= 0) & (index < data.shape[0])):
        raise ValueError(f"BatchReindex layer '{layer.name}': indices must be integers in [0, {data.shape[0]})")
    return [data[index.astype(np.int64)]]


@FORWARDS.register("Clip")
def clip(layer: Layer, xs: list[np.ndarray]) -> list[np.ndarray]:
    """std::max(min, std::min(x, max)) element-wise; NaN becomes min (clip_layer.cpp)."""
    lo, hi = np.float32(layer.params.min), np.float32(layer.params.max)
    x = xs[0]
    inner = np.where(hi < x, hi, x)  # std::min(x, max) = (max < x) ? max : x; NaN stays
    return [np.where(lo < inner, inner, lo).astype(np.float32)]  # std::max(min, v) = (min < v) ? v : min


@FORWARDS.register("Swish")
def swish(layer: Layer, xs: list[np.ndarray]) -> list[np.ndarray]:
    """x * sigmoid(beta * x), sigmoid as Caffe's 0.5 * tanh(0.5 z) + 0.5 (swish_layer.cpp)."""
    x = xs[0]
    z = x * np.float32(layer.params.beta)
    s = np.float32(0.5) * np.tanh(np.float32(0.5) * z) + np.float32(0.5)
    return [(x * s).astype(np.float32)]
