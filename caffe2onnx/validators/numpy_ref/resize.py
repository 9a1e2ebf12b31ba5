"""Upsample (brocolli nearest; SegNet mask unpooling), Resize and BilinearInterpolate, written
from the forks' C++ loops in float32."""
from __future__ import annotations

import numpy as np

from ...ir import Layer
from .extra import scatter_plane
from .registry import FORWARDS

f32 = np.float32


@FORWARDS.register("Upsample")
def upsample(layer: Layer, xs: list[np.ndarray]) -> list[np.ndarray]:
    """brocolli: out[.., h, w] = in[.., h / s, w / s]; SegNet (mask bottom): scatter into zeros by the mask."""
    p = layer.params
    x = xs[0].astype(f32, copy=False)
    if p.mask:
        return [scatter_plane(x, xs[1], layer.output_shapes[0])]
    sh, sw = p.scale
    if p.dims_num == 3:
        return [np.repeat(x, sw, axis=2)]
    return [np.repeat(np.repeat(x, sh, axis=2), sw, axis=3)]


def _resize_axis(src: int, dst: int):
    scale = f32(src) / f32(dst)
    pos = np.arange(dst, dtype=f32) * scale
    i0 = np.floor(pos).astype(np.int64)
    frac = pos - i0.astype(f32)
    return i0, np.abs(f32(1) - frac), np.abs(frac), i0 + 1 < src


@FORWARDS.register("Resize")
def resize(layer: Layer, xs: list[np.ndarray]) -> list[np.ndarray]:
    """BiLinearResizeMat_cpu: src = dst * in/out; wh0*ww0*x00 (+ each further tap only inside the input)."""
    x = xs[0].astype(f32, copy=False)
    (h, w), (oh, ow) = x.shape[2:], layer.output_shapes[0][2:]
    hi, wh0, wh1, hin = _resize_axis(h, oh)
    wi, ww0, ww1, win = _resize_axis(w, ow)
    hi, wi = hi[:, None], wi[None, :]
    wh0, wh1, hin = wh0[:, None], wh1[:, None], hin[:, None]
    hj, wj = np.minimum(hi + 1, h - 1), np.minimum(wi + 1, w - 1)  # read safely, used only where inside
    v = (wh0 * ww0) * x[:, :, hi, wi]
    v = v + np.where(win, (wh0 * ww1) * x[:, :, hi, wj], f32(0))
    v = v + np.where(hin, (wh1 * ww0) * x[:, :, hj, wi], f32(0))
    v = v + np.where(hin & win, (wh1 * ww1) * x[:, :, hj, wj], f32(0))
    return [v.astype(f32)]


def _bilinear_axis(src: int, dst: int, align: bool):
    i = np.arange(dst, dtype=f32)
    if align:
        pos = (f32(src - 1) / f32(dst - 1)) * i
    else:  # float(src) / dst * (i + 0.5) - 0.5: the 0.5 literals make it double
        pos = (np.float64(f32(src) / f32(dst)) * (i.astype(np.float64) + 0.5) - 0.5).astype(f32)
    pos = np.clip(pos, f32(0), f32(src - 1))
    i0 = np.clip(np.floor(pos).astype(np.int64), 0, src - 2)
    return i0, pos


@FORWARDS.register("BilinearInterpolate")
def bilinear_interpolate(layer: Layer, xs: list[np.ndarray]) -> list[np.ndarray]:
    """r0 = (w1-w)*q00 + (w-w0)*q01, r1 likewise a row below, out = (h1-h)*r0 + (h-h0)*r1."""
    x = xs[0].astype(f32, copy=False)
    align = layer.params.align_corners
    (h, w), (oh, ow) = x.shape[2:], layer.output_shapes[0][2:]
    h0, hp = _bilinear_axis(h, oh, align)
    w0, wp = _bilinear_axis(w, ow, align)
    h0, hp = h0[:, None], hp[:, None]
    a0, a1 = (w0 + 1).astype(f32) - wp, wp - w0.astype(f32)
    r0 = a0 * x[:, :, h0, w0] + a1 * x[:, :, h0, w0 + 1]
    r1 = a0 * x[:, :, h0 + 1, w0] + a1 * x[:, :, h0 + 1, w0 + 1]
    return [((h0 + 1).astype(f32) - hp) * r0 + (hp - h0.astype(f32)) * r1]
