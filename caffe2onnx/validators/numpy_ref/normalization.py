"""BatchNorm, Scale, Bias and MVN as Caffe's Forward_cpu computes them."""
from __future__ import annotations

import numpy as np

from ...ir import Layer
from .registry import FORWARDS

f32 = np.float32


@FORWARDS.register("BatchNorm")
def batch_norm(layer: Layer, xs: list[np.ndarray]) -> list[np.ndarray]:
    """(x - mean) / sqrt(var + eps) per channel; stored stats scaled by 1/blob2 (0 -> 0) or batch stats."""
    p = layer.params
    x = xs[0].astype(f32, copy=False)
    c = x.shape[1] if x.ndim > 1 else 1
    x3 = x.reshape(x.shape[0], c, -1)
    if p.use_global_stats:
        f = layer.weights[2].reshape(-1)[0]
        factor = f32(0) if f == 0 else f32(1) / f32(f)
        mean = factor * layer.weights[0].astype(f32)
        var = factor * layer.weights[1].astype(f32)
        centred = x3 - mean[None, :, None]
    else:  # statistics over the batch and spatial axes, var = E((x - EX)^2)
        mean = x3.astype(np.float64).mean(axis=(0, 2)).astype(f32)
        centred = x3 - mean[None, :, None]
        var = np.square(centred, dtype=np.float64).mean(axis=(0, 2)).astype(f32)
    std = np.sqrt(var + f32(p.eps))
    return [(centred / std[None, :, None]).reshape(x.shape)]


def _param_view(v: np.ndarray, axis: int, num_axes: int, ndim: int) -> np.ndarray:
    """A scale/bias blob (num_axes dims) shaped to broadcast over axes [axis, axis + num_axes)."""
    v = np.asarray(v, f32)
    return v.reshape((1,) * axis + v.shape + (1,) * (ndim - axis - num_axes))


@FORWARDS.register("Scale")
def scale(layer: Layer, xs: list[np.ndarray]) -> list[np.ndarray]:
    """x * s (+ b), s and b broadcast over axes [axis, axis + num_axes); s a blob or the second bottom."""
    p = layer.params
    x = xs[0].astype(f32, copy=False)
    s = xs[1] if p.second_bottom else layer.weights[0]
    y = x * _param_view(s, p.axis, p.num_axes, x.ndim)
    if p.bias_term:
        y = y + _param_view(layer.weights[-1], p.axis, p.num_axes, x.ndim)
    return [y]


@FORWARDS.register("Bias")
def bias(layer: Layer, xs: list[np.ndarray]) -> list[np.ndarray]:
    """x + b, b broadcast over axes [axis, axis + num_axes); b a blob or the second bottom."""
    p = layer.params
    x = xs[0].astype(f32, copy=False)
    b = xs[1] if p.second_bottom else layer.weights[0]
    return [x + _param_view(b, p.axis, p.num_axes, x.ndim)]


@FORWARDS.register("MVN")
def mvn(layer: Layer, xs: list[np.ndarray]) -> list[np.ndarray]:
    """x - mean over (H, W) per channel or over (C, H, W); then / (sqrt(E((x - EX)^2)) + eps); top 4-D."""
    p = layer.params
    # Caffe reads num/channels/height/width (missing trailing axes are 1) and writes a 4-D top.
    x = xs[0].astype(f32, copy=False).reshape(layer.output_shapes[0])
    rows = x.shape[0] if p.across_channels else x.shape[0] * x.shape[1]
    x2 = x.reshape(rows, -1)
    centred = x2 - x2.astype(np.float64).mean(axis=1, keepdims=True).astype(f32)
    if p.normalize_variance:
        var = np.square(centred, dtype=np.float64).mean(axis=1, keepdims=True).astype(f32)
        centred = centred / (np.sqrt(var) + f32(p.eps))  # Caffe adds eps to the std, not the variance
    return [centred.reshape(x.shape)]
