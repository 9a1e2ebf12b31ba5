"""Fork layers as their own CPU (or, for PSROIPooling, CUDA) code computes them.

BN, ShuffleChannel, Axpy, ConvolutionDepthwise and DepthwiseConvolution, Interp,
ROIPooling, PSROIPooling; each function names the fork file it follows.
ROI loops run over ROIs and bins (small), never over channels or pixels.
"""
from __future__ import annotations

import math

import numpy as np

from ...errors import Caffe2OnnxError
from ...ir import Layer
from .registry import FORWARDS
from .vision import convolution

f32 = np.float32


def _c(v: np.ndarray, ndim: int) -> np.ndarray:
    """A (1, C, 1, 1) blob broadcast over the channels of an ndim-D blob."""
    return np.asarray(v, f32).reshape((1, -1) + (1,) * (ndim - 2))


@FORWARDS.register("BN")
def bn(layer: Layer, xs: list[np.ndarray]) -> list[np.ndarray]:
    """caffe-segnet: (LEARN: batch-normalised) x*scale+shift, 4-D top; PSPNet: (x-mean)*(var+eps)^-0.5*slope+bias."""
    p = layer.params
    x = xs[0].astype(f32, copy=False)
    w = layer.weights
    if p.fork == "pspnet":  # hszhao/PSPNet bn_layer.cpp, TEST phase
        inv_std = np.power(np.asarray(w[3], f32) + f32(p.eps), f32(-0.5))
        return [(((x - _c(w[2], x.ndim)) * _c(inv_std, x.ndim)) * _c(w[0], x.ndim)) + _c(w[1], x.ndim)]
    x = x.reshape(layer.output_shapes[0])  # alexgkendall/caffe-segnet bn_layer.cpp: 4-D top
    if p.batch_stats:  # LEARN: var(X) = E(X^2) - (EX)^2 over N, H, W; eps 1e-9 on the variance
        mean = x.astype(np.float64).mean(axis=(0, 2, 3)).astype(f32)
        ex2 = np.square(x, dtype=np.float64).mean(axis=(0, 2, 3)).astype(f32)
        var = ex2 - mean * mean
        x = (x - _c(mean, 4)) / _c(np.sqrt(var + f32(p.eps)), 4)
    return [x * _c(w[0], 4) + _c(w[1], 4)]


@FORWARDS.register("ShuffleChannel")
def shuffle_channel(layer: Layer, xs: list[np.ndarray]) -> list[np.ndarray]:
    """farmingyard/ShuffleNet: input channel i*(C/g)+j is copied to output channel j*g+i."""
    x = xs[0]
    g = layer.params.group
    c = x.shape[1]
    out = np.empty_like(x)
    for i in range(g):
        for j in range(c // g):
            out[:, j * g + i] = x[:, i * (c // g) + j]
    return [out]


@FORWARDS.register("Axpy")
def axpy(layer: Layer, xs: list[np.ndarray]) -> list[np.ndarray]:
    """hujie-frank/SENet: top = Y, then top += a[n, c] * X[n, c] (caffe_axpy)."""
    a, x, y = (v.astype(f32, copy=False) for v in xs)
    return [a.reshape(a.shape[0], a.shape[1], *(1,) * (x.ndim - 2)) * x + y]


@FORWARDS.register("ConvolutionDepthwise")
def convolution_depthwise(layer: Layer, xs: list[np.ndarray]) -> list[np.ndarray]:
    """conv_dw_layer.cpp: sum over the kernel of w[c, kh, kw] * x[c, h_in, w_in] inside the map, + bias[c]."""
    return convolution(layer, xs)  # its params are a group = C convolution's


@FORWARDS.register("DepthwiseConvolution")
def depthwise_convolution(layer: Layer, xs: list[np.ndarray]) -> list[np.ndarray]:
    """yonghenglh6/DepthwiseConvolution: BaseConvolutionLayer's im2col forward, as Convolution."""
    return convolution(layer, xs)


def _interp_axis(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """util/interp.cpp per axis: index, next-index step (0 at the edge) and lambda, in float32."""
    r = f32(n_in - 1) / f32(n_out - 1) if n_out > 1 else f32(0)
    pos = (r * np.arange(n_out, dtype=f32)).astype(f32)
    idx = pos.astype(np.int64)
    step = (idx < n_in - 1).astype(np.int64)
    return idx, step, (pos - idx.astype(f32)).astype(f32)


@FORWARDS.register("Interp")
def interp(layer: Layer, xs: list[np.ndarray]) -> list[np.ndarray]:
    """hszhao/PSPNet caffe_cpu_interp2: crop by -pad_beg/-pad_end, then align-corners bilinear (copy if same size)."""
    p = layer.params
    x = xs[0].astype(f32, copy=False)
    h, w = x.shape[2:]
    x = x[:, :, p.crop_beg:h - p.crop_end, p.crop_beg:w - p.crop_end]
    if x.shape[2:] == (p.height, p.width):
        return [x.copy()]
    hi, hs, hl = _interp_axis(x.shape[2], p.height)
    wi, ws, wl = _interp_axis(x.shape[3], p.width)
    top, bot = x[:, :, hi], x[:, :, hi + hs]
    h0, h1 = (f32(1) - hl)[:, None], hl[:, None]
    w0, w1 = f32(1) - wl, wl
    return [h0 * (w0 * top[..., wi] + w1 * top[..., wi + ws]) + h1 * (w0 * bot[..., wi] + w1 * bot[..., wi + ws])]


def _batch(roi: np.ndarray, x: np.ndarray, layer: Layer) -> int:
    b = int(roi[0])  # C's int(): truncation
    if not 0 <= b < x.shape[0]:
        raise Caffe2OnnxError(f"layer '{layer.name}' (type {layer.type}): ROI batch index {roi[0]} is outside "
                              f"the batch of {x.shape[0]} (Caffe aborts)")
    return b


def _c_round(v: float) -> float:
    """C's round(): halves away from zero."""
    return math.copysign(math.floor(abs(v) + 0.5), v)  # exact in double for float32 inputs


@FORWARDS.register("ROIPooling")
def roi_pooling(layer: Layer, xs: list[np.ndarray]) -> list[np.ndarray]:
    """caffe-fast-rcnn roi_pooling_layer.cpp Forward_cpu: max over each bin, empty bins 0."""
    x, rois = xs[0].astype(f32, copy=False), xs[1].reshape(-1, 5).astype(f32)
    ph_n, pw_n = layer.params.pooled
    scale = f32(layer.params.spatial_scale)
    height, width = x.shape[2:]
    out = np.zeros(layer.output_shapes[0], f32)
    for n, roi in enumerate(rois):
        b = _batch(roi, x, layer)
        x1, y1, x2, y2 = (int(_c_round(float(f32(v) * scale))) for v in roi[1:])
        bin_h = f32(max(y2 - y1 + 1, 1)) / f32(ph_n)
        bin_w = f32(max(x2 - x1 + 1, 1)) / f32(pw_n)
        for ph in range(ph_n):
            hs = min(max(math.floor(f32(ph) * bin_h) + y1, 0), height)
            he = min(max(math.ceil(f32(ph + 1) * bin_h) + y1, 0), height)
            for pw in range(pw_n):
                ws = min(max(math.floor(f32(pw) * bin_w) + x1, 0), width)
                we = min(max(math.ceil(f32(pw + 1) * bin_w) + x1, 0), width)
                if he > hs and we > ws:
                    out[n, :, ph, pw] = x[b, :, hs:he, ws:we].max(axis=(1, 2))
    return [out]


@FORWARDS.register("PSROIPooling")
def psroi_pooling(layer: Layer, xs: list[np.ndarray]) -> list[np.ndarray]:
    """caffe-rfcn PSROIPoolingForward: average of bin (i, j) over channel (d*G+i)*G+j, empty bins 0."""
    x, rois = xs[0].astype(f32, copy=False), xs[1].reshape(-1, 5).astype(f32)
    g, d_n = layer.params.pooled[0], layer.params.output_dim
    scale = f32(layer.params.spatial_scale)
    height, width = x.shape[2:]
    out = np.zeros(layer.output_shapes[0], f32)
    chans = np.arange(d_n) * g * g
    for n, roi in enumerate(rois):
        b = _batch(roi, x, layer)
        sw, sh = (f32(_c_round(float(v))) * scale for v in roi[1:3])
        ew, eh = (f32(_c_round(float(v)) + 1.0) * scale for v in roi[3:5])
        bin_w = max(f32(ew - sw), f32(0.1)) / f32(g)
        bin_h = max(f32(eh - sh), f32(0.1)) / f32(g)
        for i in range(g):
            hs = min(max(math.floor(f32(f32(i) * bin_h) + sh), 0), height)
            he = min(max(math.ceil(f32(f32(i + 1) * bin_h) + sh), 0), height)
            for j in range(g):
                ws = min(max(math.floor(f32(f32(j) * bin_w) + sw), 0), width)
                we = min(max(math.ceil(f32(f32(j + 1) * bin_w) + sw), 0), width)
                if he > hs and we > ws:
                    window = x[b, chans + i * g + j, hs:he, ws:we].astype(np.float64)
                    out[n, :, i, j] = window.sum(axis=(1, 2)) / ((he - hs) * (we - ws))
    return [out]
