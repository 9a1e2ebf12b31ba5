"""Spatial layers: Convolution, Deconvolution, Pooling, LRN, as Caffe's CPU code computes them.

Loops run over kernel offsets (or channels), never over output elements:
each step moves a whole strided view of the blob.
"""
from __future__ import annotations

import itertools
import math

import numpy as np

from ...ir import Layer
from .registry import FORWARDS

_FLT_MAX = float(np.finfo(np.float32).max)


def _offsets(kernel: tuple[int, ...]):
    """Kernel offsets in Caffe's im2col order (last spatial axis fastest)."""
    return itertools.product(*(range(k) for k in kernel))


def _taps(off, dilation, stride, count) -> tuple[slice, ...]:
    """The (batch, channel, spatial...) index of one kernel offset's strided view."""
    return (slice(None), slice(None)) + tuple(
        slice(o * d, o * d + s * (n - 1) + 1, s) for o, d, s, n in zip(off, dilation, stride, count))


def _pad_spatial(x: np.ndarray, before, after, value: float = 0.0) -> np.ndarray:
    if not any(before) and not any(after):
        return x
    return np.pad(x, [(0, 0), (0, 0)] + list(zip(before, after)), constant_values=value)


def _im2col(x: np.ndarray, p, out_spatial) -> np.ndarray:
    """(N, C, *in) -> (N, C * prod(kernel), L): Caffe's column buffer, padded with zeros."""
    xp = _pad_spatial(x, p.pad, p.pad)
    n, c = x.shape[:2]
    kt = math.prod(p.kernel)
    cols = np.empty((n, c, kt, *out_spatial), x.dtype)
    for i, off in enumerate(_offsets(p.kernel)):
        cols[:, :, i] = xp[_taps(off, p.dilation, p.stride, out_spatial)]
    return cols.reshape(n, c * kt, -1)


def _conv_one(layer: Layer, x: np.ndarray) -> np.ndarray:
    p, g = layer.params, layer.params.group
    out_spatial = layer.output_shapes[0][2:]
    n = x.shape[0]
    cols = _im2col(x.astype(np.float64), p, out_spatial)
    cols = cols.reshape(n, g, cols.shape[1] // g, -1)  # (N, G, C/G * prod(kernel), L)
    w = layer.weights[0].astype(np.float64).reshape(g, p.num_output // g, -1)
    y = np.matmul(w, cols).reshape(n, p.num_output, -1)  # every group at once
    if p.bias_term:
        y += layer.weights[1].astype(np.float64)[None, :, None]
    return y.reshape(n, p.num_output, *out_spatial).astype(np.float32)


@FORWARDS.register("Convolution")
def convolution(layer: Layer, xs: list[np.ndarray]) -> list[np.ndarray]:
    """im2col (zero pad, stride, dilation) then per-group W @ cols (+ bias), in float64; each bottom alike."""
    return [_conv_one(layer, x) for x in xs]


def _deconv_one(layer: Layer, x: np.ndarray) -> np.ndarray:
    p, g = layer.params, layer.params.group
    n, c, *in_spatial = x.shape
    out_spatial = layer.output_shapes[0][2:]
    kt = math.prod(p.kernel)
    w = layer.weights[0].astype(np.float64).reshape(g, c // g, -1)  # (G, C_in/G, C_out/G * prod(kernel))
    col = np.matmul(w.transpose(0, 2, 1), x.astype(np.float64).reshape(n, g, c // g, -1))
    col = col.reshape(n, p.num_output, kt, *in_spatial)
    full = tuple(o + 2 * pd for o, pd in zip(out_spatial, p.pad))
    y = np.zeros((n, p.num_output, *full), np.float64)
    for i, off in enumerate(_offsets(p.kernel)):
        y[_taps(off, p.dilation, p.stride, in_spatial)] += col[:, :, i]  # col2im accumulates
    y = y[(slice(None), slice(None)) + tuple(slice(pd, pd + o) for pd, o in zip(p.pad, out_spatial))]
    if p.bias_term:
        y = y + layer.weights[1].astype(np.float64).reshape(1, -1, *([1] * len(out_spatial)))
    return y.astype(np.float32)


@FORWARDS.register("Deconvolution")
def deconvolution(layer: Layer, xs: list[np.ndarray]) -> list[np.ndarray]:
    """Conv's backward: cols = W_g^T @ x, col2im scatter-add, crop the pad (+ bias), in float64."""
    return [_deconv_one(layer, x) for x in xs]


def pool2d(x: np.ndarray, method: str, kernel, stride, pad, out_hw) -> np.ndarray:
    """Caffe's Pooling Forward_cpu on a 4-D float32 blob for the given output size."""
    h_w = x.shape[2:]
    after = [max(0, (o - 1) * s + k - pd - d) for o, s, k, pd, d in zip(out_hw, stride, kernel, pad, h_w)]
    ones = (1, 1)
    if method == "MAX":
        xp = _pad_spatial(x, pad, after, -_FLT_MAX)  # Caffe starts each output at -FLT_MAX
        acc = np.full((*x.shape[:2], *out_hw), -_FLT_MAX, np.float32)
        for off in _offsets(kernel):
            np.maximum(acc, xp[_taps(off, ones, stride, out_hw)], out=acc)
        return acc
    xp = _pad_spatial(x, pad, after, 0.0)
    acc = np.zeros((*x.shape[:2], *out_hw), np.float32)
    for off in _offsets(kernel):  # row-major window order, float32 sums, as Caffe's loops
        acc += xp[_taps(off, ones, stride, out_hw)]
    # The divisor counts the window clipped to the padded input, padding included.
    sizes = []
    for o, s, k, pd, d in zip(out_hw, stride, kernel, pad, h_w):
        start = np.arange(o) * s - pd
        sizes.append(np.minimum(start + k, d + pd) - start)
    with np.errstate(divide="ignore", invalid="ignore"):  # a window wholly past the input: 0/0 as Caffe
        return acc / np.outer(sizes[0], sizes[1]).astype(np.float32)


def max_pool_mask(x: np.ndarray, kernel, stride, pad, out_hw) -> np.ndarray:
    """Caffe's MAX pooling argmax, h * W + w in the channel plane: the first strict maximum in
    row-major window order, -1 where a window holds no input."""
    h_w = x.shape[2:]
    after = [max(0, (o - 1) * s + k - pd - d) for o, s, k, pd, d in zip(out_hw, stride, kernel, pad, h_w)]
    xp = _pad_spatial(x, pad, after, -np.inf)  # padding never wins, not even against -FLT_MAX
    index = np.arange(h_w[0] * h_w[1], dtype=np.float64).reshape(1, 1, *h_w)
    ip = _pad_spatial(index, pad, after, -1.0)
    acc = np.full((*x.shape[:2], *out_hw), -_FLT_MAX, np.float32)
    mask = np.full(acc.shape, -1.0)
    for off in _offsets(kernel):
        tap = _taps(off, (1, 1), stride, out_hw)
        v = xp[tap]
        better = v > acc  # strict: an equal later value keeps the earlier index, as Caffe
        acc = np.where(better, v, acc)
        mask = np.where(better, np.broadcast_to(ip[tap], v.shape), mask)
    return mask.astype(np.float32)


@FORWARDS.register("Pooling")
def pooling(layer: Layer, xs: list[np.ndarray]) -> list[np.ndarray]:
    """MAX or AVE over clipped windows; AVE divides by the window clipped to the padded input; MAX's mask top."""
    p = layer.params
    x = xs[0].astype(np.float32, copy=False)
    out_hw = layer.output_shapes[0][2:]
    tops = [pool2d(x, p.method, p.kernel, p.stride, p.pad, out_hw)]
    if p.mask:
        tops.append(max_pool_mask(x, p.kernel, p.stride, p.pad, out_hw))
    return tops


def _lrn_across(x: np.ndarray, p) -> np.ndarray:
    n, c = x.shape[:2]
    pre = (p.local_size - 1) // 2
    sq = np.zeros((n, c + p.local_size - 1, *x.shape[2:]), np.float32)
    sq[:, pre:pre + c] = x * x
    a = np.float32(p.alpha) / np.float32(p.local_size)
    scale = np.empty_like(x)
    first = np.full((n, *x.shape[2:]), p.k, np.float32)
    for i in range(p.local_size):
        first += a * sq[:, i]
    scale[:, 0] = first
    for i in range(1, c):  # Caffe's running window: add the head, subtract the tail
        scale[:, i] = scale[:, i - 1] + a * sq[:, i + p.local_size - 1]
        scale[:, i] += -a * sq[:, i - 1]
    return np.power(scale, np.float32(-p.beta)) * x


def _lrn_within(x: np.ndarray, p) -> np.ndarray:
    pre = (p.local_size - 1) // 2
    k = (p.local_size, p.local_size)
    pooled = pool2d(x * x, "AVE", k, (1, 1), (pre, pre), x.shape[2:])
    # Caffe's inner Power layer: (1 + alpha * avg)^-beta; k is not used in this mode.
    return x * np.power(pooled * np.float32(p.alpha) + np.float32(1), np.float32(-p.beta))


@FORWARDS.register("LRN")
def lrn(layer: Layer, xs: list[np.ndarray]) -> list[np.ndarray]:
    """ACROSS_CHANNELS: x * (k + alpha/n sum x^2)^-beta; WITHIN_CHANNEL: x * (1 + alpha avg x^2)^-beta."""
    x = xs[0].astype(np.float32, copy=False)
    p = layer.params
    return [_lrn_across(x, p) if p.across_channels else _lrn_within(x, p)]
