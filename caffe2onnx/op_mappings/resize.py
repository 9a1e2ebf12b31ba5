"""Resampling layers: Upsample (nearest, or SegNet unpooling with a mask), Resize, BilinearInterpolate."""
from __future__ import annotations

import numpy as np

from ..ir import Layer
from .extra import batch_shape, scatter_plane
from .registry import MAPPINGS, GraphBuilder

f32 = np.float32


def _onnx_resize(g: GraphBuilder, x: str, out: str, *, scales=None, sizes=None, **attrs) -> None:
    """ONNX Resize with the opset-11 input layout (roi, scales, sizes), valid at every later opset."""
    roi = g.const(np.zeros(0, np.float32), "roi")
    if scales is not None:
        g.node("Resize", [x, roi, g.const(np.asarray(scales, np.float32), "scales")], [out], **attrs)
    else:
        empty = g.const(np.zeros(0, np.float32), "scales")
        # With a dynamic batch the sizes take N and C from the input at run time.
        size = batch_shape(g, x, list(sizes[2:])) if g.options.dynamic_batch else g.const(sizes, "sizes", np.int64)
        g.node("Resize", [x, roi, empty, size], [out], **attrs)


@MAPPINGS.register("Upsample")
def upsample(layer: Layer, g: GraphBuilder) -> None:
    """One bottom: out[.., h, w] = in[.., h / s, w / s] (nearest, integer scale); with a mask: SegNet unpooling.

    Source: brocolli caffe src/caffe/layers/upsample_layer.cpp (one bottom: Resize nearest,
    asymmetric, floor); alexgkendall/caffe-segnet src/caffe/layers/upsample_layer.cpp (two bottoms:
    zeros, then top[n, c].flat[int(mask[n, c, i])] = bottom[n, c].flat[i], as ScatterElements).
    Limits: dims_num 3 needs a 3-D blob and 4 a 4-D one; the mask form: a SegNet caffemodel's
    upsample_param (field 137) is refused (pass the prototxt); mask indices are data, handled as in
    MaxUnPool.
    """
    p = layer.params
    if p.mask:
        scatter_plane(g, layer.inputs[0], layer.inputs[1], layer.input_shapes[0], layer.output_shapes[0],
                      layer.outputs[0])
        return
    scales = [1.0, 1.0, float(p.scale[0]), float(p.scale[1])] if p.dims_num == 4 else [1.0, 1.0, float(p.scale[1])]
    _onnx_resize(g, layer.inputs[0], layer.outputs[0], scales=scales, mode="nearest",
                 coordinate_transformation_mode="asymmetric", nearest_mode="floor")


def caffe_resize_taps(src: int, dst: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """BiLinearResizeMat_cpu per axis, in float32: i0 = floor(d * (src/dst)), weights |1-f| and |f|;
    the second tap is dropped (weight 0) past the edge. Returns (i0, i1 clamped, w0, w1)."""
    scale = f32(src) / f32(dst)
    pos = np.arange(dst, dtype=f32) * scale
    i0 = np.floor(pos).astype(np.int64)
    frac = pos - i0.astype(f32)
    w0, w1 = np.abs(f32(1) - frac), np.abs(frac)
    inside = i0 + 1 < src
    return i0, np.where(inside, i0 + 1, i0), w0, np.where(inside, w1, f32(0))


def _separable(g: GraphBuilder, x: str, axis: int, taps, rank: int, out: list[str] | int = 1) -> str:
    """sum over the two taps of Gather(x, i_k, axis) * w_k, the weights broadcast along ``axis``."""
    i0, i1, w0, w1 = taps
    shape = [1] * rank
    shape[axis] = -1
    a = g.node("Mul", [g.node("Gather", [x, g.const(i0, "index0")], axis=axis)[0], g.const(w0.reshape(shape), "w0")])[0]
    b = g.node("Mul", [g.node("Gather", [x, g.const(i1, "index1")], axis=axis)[0], g.const(w1.reshape(shape), "w1")])[0]
    return g.node("Add", [a, b], out)[0]


@MAPPINGS.register("Resize")
def resize(layer: Layer, g: GraphBuilder) -> None:
    """Bilinear resize, src = dst * (in / out) ('asymmetric'); a tap past the last row/column is dropped, not clamped.

    Source: brocolli caffe src/caffe/layers/resize_layer.cpp -> src/caffe/util/util_img.cpp BiLinearResizeMat_cpu
    Limits: 4-D only. No ONNX Resize mode drops the edge tap (Caffe's last rows/columns fade
    towards 0 when upsampling), so it is decomposed: Gather + Mul + Add per axis, weights
    computed in float32 as Caffe; a tap Caffe skips is weight 0 (an inf/NaN there gives NaN here).
    """
    (h, w), (oh, ow) = layer.input_shapes[0][2:], layer.output_shapes[0][2:]
    cols = _separable(g, layer.inputs[0], 3, caffe_resize_taps(w, ow), 4)
    _separable(g, cols, 2, caffe_resize_taps(h, oh), 4, list(layer.outputs))


@MAPPINGS.register("BilinearInterpolate")
def bilinear_interpolate(layer: Layer, g: GraphBuilder) -> None:
    """Bilinear resize, src = (in-1)/(out-1) * dst (align_corners) or in/out * (dst + 0.5) - 0.5 clamped to [0, in-1].

    Source: brocolli caffe src/caffe/layers/bilinear_interpolate_layer.cpp
    ONNX Resize linear with coordinate_transformation_mode 'align_corners', or 'half_pixel' (whose
    linear taps clamp to the edge exactly as Caffe clamps the source coordinate).
    Limits: dst_h/dst_w together with scale_factor, or neither (Caffe leaves the size unset);
    inputs under 2 x 2 (Caffe reads outside the blob); align_corners with an output of 1 (0/0).
    """
    mode = "align_corners" if layer.params.align_corners else "half_pixel"
    _onnx_resize(g, layer.inputs[0], layer.outputs[0], sizes=list(layer.output_shapes[0]), mode="linear",
                 coordinate_transformation_mode=mode)
