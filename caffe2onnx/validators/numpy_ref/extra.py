"""Unsqueeze, PixelShuffle, Pad, MaxUnPool and BatchNormKyle as the reference Caffe computes them."""
from __future__ import annotations

import numpy as np

from ...errors import Caffe2OnnxError
from ...ir import Layer
from .registry import FORWARDS

f32 = np.float32


@FORWARDS.register("Unsqueeze")
def unsqueeze(layer: Layer, xs: list[np.ndarray]) -> list[np.ndarray]:
    """The data copied into a shape with a 1 inserted at dim."""
    return [xs[0].reshape(layer.output_shapes[0]).copy()]


@FORWARDS.register("PixelShuffle")
def pixel_shuffle(layer: Layer, xs: list[np.ndarray]) -> list[np.ndarray]:
    """Caffe's loops: top(n, p, i*r + sh, j*r + sw) = bottom(n, p*r*r + sh*r + sw, i, j)."""
    r = layer.params.factor
    x = xs[0]
    n, _, h, w = x.shape
    c_out = layer.output_shapes[0][1]
    top = np.empty(layer.output_shapes[0], f32)
    for sh in range(r):
        for sw in range(r):
            top[:, :, sh::r, sw::r] = x[:, [p * r * r + sh * r + sw for p in range(c_out)]]
    return [top]


@FORWARDS.register("Pad")
def pad(layer: Layer, xs: list[np.ndarray]) -> list[np.ndarray]:
    """All pads < 0: crop from (|u|, |l|); else the body at (u, l) and the border per pad_type."""
    p = layer.params
    u, d, left, right = p.pads
    x = xs[0]
    if min(p.pads) < 0:
        h, w = layer.output_shapes[0][2:]
        return [x[:, :, -u:-u + h, -left:-left + w].copy()]
    widths = [(0, 0), (0, 0), (u, d), (left, right)]
    if p.mode == "CONSTANT":
        return [np.pad(x, widths, constant_values=f32(p.value))]
    # REPLICATE copies the edge row/column; REFLECT mirrors around it without repeating it
    # (Caffe's wsrc = pad_l + 1, ... loops), rows after columns so corners mirror both.
    return [np.pad(x, widths, mode="edge" if p.mode == "REPLICATE" else "reflect")]


def scatter_plane(x: np.ndarray, mask: np.ndarray, out_shape) -> np.ndarray:
    """zeros, then top[n, c].flat[int(mask[n, c, i])] = x[n, c].flat[i] for i in order (the last wins)."""
    n, c = x.shape[:2]
    plane = out_shape[2] * out_shape[3]
    top = np.zeros((n, c, plane), f32)
    index = np.trunc(mask.reshape(n, c, -1)).astype(np.int64)  # static_cast<int>
    if index.size and (index.min() < 0 or index.max() >= plane):
        raise Caffe2OnnxError(f"mask index {int(index.min() if index.min() < 0 else index.max())} is outside the "
                              f"{out_shape[2]}x{out_shape[3]} output plane (Caffe aborts or writes out of bounds)")
    values = x.reshape(n, c, -1)
    rows = np.arange(n * c).repeat(index.shape[2])
    # NumPy's fancy assignment keeps the last of repeated indices, like Caffe's loop.
    top.reshape(n * c, plane)[rows, index.reshape(-1)] = values.reshape(-1)
    return top.reshape(out_shape)


@FORWARDS.register("MaxUnPool")
def max_unpool(layer: Layer, xs: list[np.ndarray]) -> list[np.ndarray]:
    """Zeros of (N, C, dst_h, dst_w), then top[n, c].flat[mask[n, c, i]] = bottom[n, c].flat[i]."""
    return [scatter_plane(xs[0].astype(f32, copy=False), xs[1], layer.output_shapes[0])]


@FORWARDS.register("BatchNormKyle")
def batch_norm_kyle(layer: Layer, xs: list[np.ndarray]) -> list[np.ndarray]:
    """BatchNorm's forward, then alpha * y + beta per channel (blobs 3 and 4) with use_alpha_beta."""
    y = FORWARDS.get("BatchNorm").fn(layer, xs)[0]
    if not layer.params.use_alpha_beta:
        return [y]
    per_channel = (1, -1) + (1,) * (y.ndim - 2)
    alpha = layer.weights[3].astype(f32).reshape(per_channel)
    beta = layer.weights[4].astype(f32).reshape(per_channel)
    return [alpha * y + beta]
