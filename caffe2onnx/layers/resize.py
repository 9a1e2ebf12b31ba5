"""Specs of the resampling layers: Upsample (brocolli nearest, SegNet/ENet mask form), Resize,
BilinearInterpolate."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .registry import SPECS, Inferred, LayerProblem, Spec, opt

_SEGNET_FIELDS = ("scale_h", "scale_w", "pad_out_h", "pad_out_w", "upsample_h", "upsample_w")


@dataclass(frozen=True)
class UpsampleParams:
    mask: bool  # SegNet/ENet form: bottom 1 holds the pooling argmax
    scale: tuple[int, int]  # (h, w); brocolli: (1, s) for dims_num 3
    pad_out: tuple[int, int] = (0, 0)
    size: tuple[int, int] | None = None  # SegNet upsample_h/upsample_w
    dims_num: int = 4


def _segnet(p) -> UpsampleParams:
    """SegNet's UpsampleLayer::LayerSetUp rules (alexgkendall/caffe-segnet upsample_layer.cpp)."""
    has = {f: p.HasField(f) for f in ("scale", *_SEGNET_FIELDS)}
    if p.HasField("dims_num"):
        raise LayerProblem("dims_num", "is brocolli's nearest form; the mask form (two bottoms) is SegNet's")
    if has["upsample_h"] and has["upsample_w"]:
        if p.upsample_h <= 1 or p.upsample_w <= 1:
            raise LayerProblem("upsample_h/upsample_w", "must be > 1 (SegNet checks it)")
        return UpsampleParams(True, (0, 0), size=(p.upsample_h, p.upsample_w))
    if has["scale_h"] or has["scale_w"]:
        if has["scale"] or not (has["scale_h"] and has["scale_w"]):
            raise LayerProblem("scale_h/scale_w", "give both, and not with scale (SegNet aborts otherwise)")
        scale = (p.scale_h, p.scale_w)
    elif not has["scale"]:
        raise LayerProblem("scale", "not given: SegNet's default is 2, the brocolli schema's 1; give it explicitly")
    else:
        scale = (p.scale, p.scale)
    if min(scale) <= 1:
        raise LayerProblem("scale", f"must be > 1 in the mask form (SegNet checks it), got {list(scale)}")
    pad_out = (int(p.pad_out_h), int(p.pad_out_w))
    if (pad_out[0] and scale[0] != 2) or (pad_out[1] and scale[1] != 2):
        raise LayerProblem("pad_out_h/pad_out_w", "needs scale 2 on that axis (SegNet checks it)")
    return UpsampleParams(True, scale, pad_out)


@SPECS.register
class Upsample(Spec):
    """One bottom: nearest upsampling by an integer scale (brocolli); with a pooling mask: SegNet unpooling."""

    type = "Upsample"
    param = "upsample_param"
    fields = frozenset({"scale", "dims_num", *_SEGNET_FIELDS})
    bottoms = (1, 2)

    @staticmethod
    def parse(p, layer):
        if len(layer.bottom) == 2:
            return _segnet(p)
        given = [f for f in _SEGNET_FIELDS if p.HasField(f)]
        if given:
            raise LayerProblem(given[0], "is a SegNet field, which needs the pooling mask as second bottom")
        if p.dims_num not in (3, 4):
            raise LayerProblem("dims_num", f"must be 3 or 4, got {p.dims_num}")
        if p.scale < 1:
            raise LayerProblem("scale", f"must be positive, got {p.scale}")
        scale = (p.scale, p.scale) if p.dims_num == 4 else (1, p.scale)
        return UpsampleParams(False, scale, dims_num=p.dims_num)

    @staticmethod
    def infer(params, shapes):
        shape = shapes[0]
        if params.mask:
            if len(shape) != 4 or tuple(shapes[1]) != tuple(shape):
                raise LayerProblem("bottom", f"data and mask must be 4-D of one shape, got {[list(s) for s in shapes]}")
            size = params.size or tuple(d * s - p for d, s, p in zip(shape[2:], params.scale, params.pad_out))
            return Inferred([(*shape[:2], *size)], [])
        if len(shape) != params.dims_num:
            raise LayerProblem("dims_num", f"{params.dims_num} needs a {params.dims_num}-D blob, got {len(shape)} axes")
        if params.dims_num == 4:
            return Inferred([(*shape[:2], shape[2] * params.scale[0], shape[3] * params.scale[1])], [])
        return Inferred([(*shape[:2], shape[2] * params.scale[1])], [])


@dataclass(frozen=True)
class SizeParams:
    size: tuple[int, int] | None  # fixed output size
    scale: tuple[float, float] | None = None  # or int(scale * in) per axis
    align_corners: bool = False


def _scaled(scale: float, d: int) -> int:
    """C++'s int(float_scale * int_size): a float32 product truncated toward zero."""
    return int(np.float32(scale) * np.float32(d))


@SPECS.register
class Resize(Spec):
    """Bilinear resize to height x width (or int(scale * size)), src = dst * in/out, taps past the edge dropped."""

    type = "Resize"
    param = "resize_param"
    fields = frozenset({"height", "width", "is_pyramid_test", "out_height_scale", "out_width_scale"})

    @staticmethod
    def parse(p, layer):
        if p.is_pyramid_test:
            if not (p.HasField("out_height_scale") and p.HasField("out_width_scale")):
                raise LayerProblem("out_height_scale/out_width_scale", "both are required with is_pyramid_test")
            return SizeParams(None, (p.out_height_scale, p.out_width_scale))
        if not (p.HasField("height") and p.HasField("width")):
            raise LayerProblem("height/width", "both are required (or is_pyramid_test with scales)")
        return SizeParams((p.height, p.width))

    @staticmethod
    def infer(params, shapes):
        return _resized(params, shapes[0], "height/width")


def _resized(params: SizeParams, shape, field: str, min_src: int = 1) -> Inferred:
    if len(shape) != 4:
        raise LayerProblem("bottom", f"needs a 4-D blob, got {len(shape)} axes")
    size = params.size or tuple(_scaled(s, d) for s, d in zip(params.scale, shape[2:]))
    if min(size) <= 0:
        raise LayerProblem(field, f"output size {list(size)} must be positive")
    if min(shape[2:]) < min_src:
        raise LayerProblem("bottom", f"input {list(shape[2:])} must be at least {min_src} in height and width "
                           "(Caffe reads outside the blob otherwise)")
    return Inferred([(*shape[:2], *size)], [], SizeParams(tuple(size), None, params.align_corners))


@SPECS.register
class BilinearInterpolate(Spec):
    """Bilinear resize to dst_h x dst_w (or int(size * scale_factor)); align_corners or half-pixel, clamped."""

    type = "BilinearInterpolate"
    param = "bilinear_interpolate_param"
    fields = frozenset({"dst_h", "dst_w", "scale_factor", "align_corners"})

    @staticmethod
    def parse(p, layer):
        dst = (opt(p, "dst_h"), opt(p, "dst_w"))
        has_scale = p.HasField("scale_factor")
        if has_scale == (dst != (None, None)):
            # LayerSetUp sets the size in neither case: Caffe would use uninitialised values.
            raise LayerProblem("dst_h/dst_w/scale_factor", "give dst_h and/or dst_w, or scale_factor, not both/neither")
        if has_scale:
            return SizeParams(None, (p.scale_factor, p.scale_factor), p.align_corners)
        return SizeParams(dst, None, p.align_corners)

    @staticmethod
    def infer(params, shapes):
        shape = shapes[0]
        if params.size is not None:
            h, w = params.size
            params = SizeParams((shape[2] if h is None else h, shape[3] if w is None else w), None,
                                params.align_corners) if len(shape) == 4 else params
        inferred = _resized(params, shape, "dst_h/dst_w/scale_factor", min_src=2)
        if params.align_corners and min(inferred.outputs[0][2:]) < 2:
            raise LayerProblem("align_corners", "with an output size of 1, Caffe divides 0 by 0")
        return inferred
