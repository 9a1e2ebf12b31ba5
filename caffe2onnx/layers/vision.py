"""Specs of the spatial layers: Convolution, Deconvolution, Pooling, LRN."""
from __future__ import annotations

import math
from dataclasses import dataclass

from ..ir import Shape
import dataclasses

from .registry import SPECS, Inferred, LayerProblem, Spec, opt, spatial

_CONV_FIELDS = frozenset({
    "num_output", "bias_term", "pad", "kernel_size", "stride", "dilation", "pad_h", "pad_w",
    "kernel_h", "kernel_w", "stride_h", "stride_w", "group", "axis", "force_nd_im2col",
})


@dataclass(frozen=True)
class ConvParams:
    num_output: int
    bias_term: bool
    kernel: tuple[int, ...]  # per spatial axis; () until the input rank is known
    stride: tuple[int, ...]
    pad: tuple[int, ...]
    dilation: tuple[int, ...]
    group: int
    raw: tuple  # (kernel, stride, pad, dilation) field values, expanded once the rank is known


def _parse_conv(p) -> ConvParams:
    if p.axis != 1:
        raise LayerProblem("axis", f"channel axis {p.axis} is not supported (only 1)")
    if p.num_output <= 0:
        raise LayerProblem("num_output", "must be given and positive")
    if p.group <= 0:
        raise LayerProblem("group", "must be positive")
    raw = (
        (list(p.kernel_size), opt(p, "kernel_h"), opt(p, "kernel_w")),
        (list(p.stride), opt(p, "stride_h"), opt(p, "stride_w")),
        (list(p.pad), opt(p, "pad_h"), opt(p, "pad_w")),
        (list(p.dilation), None, None),
    )
    if not raw[0][0] and raw[0][1] is None and raw[0][2] is None:
        raise LayerProblem("kernel_size", "must be given (kernel_size or kernel_h/kernel_w)")
    params = ConvParams(p.num_output, p.bias_term, (), (), (), (), p.group, raw)
    # Reject malformed field combinations before shapes are known; N-D lists set the rank.
    _expand(params, max([len(v) for v, _, _ in raw if len(v) > 1] or [2]))
    return params


def _expand(params: ConvParams, n: int) -> ConvParams:
    (k, kh, kw), (s, sh, sw), (pd, ph, pw), (d, _, _) = params.raw
    kernel = spatial(k, None, kh, kw, n, 0, "kernel")
    stride = spatial(s, None, sh, sw, n, 1, "stride")
    pad = spatial(pd, None, ph, pw, n, 0, "pad")
    dilation = spatial(d, None, None, None, n, 1, "dilation")
    for name, vals in (("kernel", kernel), ("stride", stride), ("dilation", dilation)):
        if min(vals) <= 0:
            raise LayerProblem(name, f"must be positive, got {list(vals)}")
    return ConvParams(params.num_output, params.bias_term, kernel, stride, pad, dilation,
                      params.group, params.raw)


def _conv_common(params: ConvParams, shapes: list[Shape]) -> tuple[ConvParams, Shape, int]:
    shape = shapes[0]
    if len(shape) < 3:
        raise LayerProblem("bottom", f"needs at least 3 axes, got {len(shape)}")
    for s in shapes[1:]:
        if s != shape:
            raise LayerProblem("bottom", "all bottoms of a convolution must have the same shape")
    full = _expand(params, len(shape) - 2)
    channels = shape[1]
    if channels % full.group or full.num_output % full.group:
        raise LayerProblem("group", f"{full.group} must divide channels {channels} and num_output {full.num_output}")
    return full, shape, channels


def _weights(full: ConvParams, out_ch: int, in_ch_per_group: int) -> list[Shape]:
    w = [(out_ch, in_ch_per_group, *full.kernel)]
    return w + [(full.num_output,)] if full.bias_term else w


@SPECS.register
class Convolution(Spec):
    """y = W * x (+ b), cross-correlation with group/dilation; out = (in + 2p - (d(k-1)+1)) / s + 1."""

    type = "Convolution"
    param = "convolution_param"
    fields = _CONV_FIELDS
    bottoms = (1, None)
    tops = (1, None)

    @staticmethod
    def parse(p, layer):
        if len(layer.bottom) != len(layer.top):
            raise LayerProblem("top", "needs one top per bottom")
        return _parse_conv(p)

    @staticmethod
    def infer(params, shapes):
        full, shape, channels = _conv_common(params, shapes)
        out = []
        for i, d in enumerate(shape[2:]):
            extent = full.dilation[i] * (full.kernel[i] - 1) + 1
            o = (d + 2 * full.pad[i] - extent) // full.stride[i] + 1
            if o <= 0:
                raise LayerProblem("kernel_size", f"kernel extent {extent} exceeds padded input {d + 2 * full.pad[i]}")
            out.append(o)
        top = (shape[0], full.num_output, *out)
        return Inferred([top] * len(shapes), _weights(full, full.num_output, channels // full.group),
                        dataclasses.replace(full, raw=()))


@SPECS.register
class Deconvolution(Spec):
    """Transposed convolution; weights (C_in, num_output/group, k...); out = s(in-1) + d(k-1)+1 - 2p."""

    type = "Deconvolution"
    param = "convolution_param"
    fields = _CONV_FIELDS
    bottoms = (1, None)
    tops = (1, None)

    parse = Convolution.parse

    @staticmethod
    def infer(params, shapes):
        full, shape, channels = _conv_common(params, shapes)
        out = []
        for i, d in enumerate(shape[2:]):
            o = full.stride[i] * (d - 1) + full.dilation[i] * (full.kernel[i] - 1) + 1 - 2 * full.pad[i]
            if o <= 0:
                raise LayerProblem("pad", f"output size {o} is not positive")
            out.append(o)
        top = (shape[0], full.num_output, *out)
        return Inferred([top] * len(shapes), _weights(full, channels, full.num_output // full.group),
                        dataclasses.replace(full, raw=()))


@dataclass(frozen=True)
class PoolParams:
    method: str  # "MAX" or "AVE"
    kernel: tuple[int, int] | None  # resolved to the input's H, W for global pooling
    stride: tuple[int, int]
    pad: tuple[int, int]
    ceil: bool
    global_pooling: bool = False
    mask: bool = False  # a second top holds the argmax


@SPECS.register
class Pooling(Spec):
    """MAX/AVE pooling with Caffe's ceil output size and the window-must-start-inside rule.

    MAX may have a second top: the argmax mask, h * W + w within each channel plane, as float."""

    type = "Pooling"
    param = "pooling_param"
    tops = (1, 2)
    fields = frozenset({"pool", "pad", "pad_h", "pad_w", "kernel_size", "kernel_h", "kernel_w",
                        "stride", "stride_h", "stride_w", "global_pooling", "round_mode", "ceil_mode"})

    @staticmethod
    def parse(p, layer):
        method = p.DESCRIPTOR.fields_by_name["pool"].enum_type.values_by_number[p.pool].name
        if method not in ("MAX", "AVE"):
            raise LayerProblem("pool", f"{method} pooling is not supported (only MAX and AVE)")
        if len(layer.top) == 2 and method != "MAX":
            raise LayerProblem("pool", "a second (mask) top needs MAX pooling (Caffe refuses it otherwise)")
        if p.HasField("round_mode") and p.HasField("ceil_mode"):
            raise LayerProblem("round_mode", "give round_mode or ceil_mode, not both")
        ceil = p.ceil_mode if p.HasField("ceil_mode") else p.round_mode == 0  # RoundMode CEIL = 0
        pad = spatial([], opt(p, "pad"), opt(p, "pad_h"), opt(p, "pad_w"), 2, 0, "pad")
        stride = spatial([], opt(p, "stride"), opt(p, "stride_h"), opt(p, "stride_w"), 2, 1, "stride")
        if min(stride) <= 0:
            raise LayerProblem("stride", "must be positive")
        has_kernel = p.HasField("kernel_size") or p.HasField("kernel_h") or p.HasField("kernel_w")
        if p.global_pooling:
            if has_kernel:
                raise LayerProblem("kernel_size", "must not be given with global_pooling")
            if pad != (0, 0) or stride != (1, 1):
                raise LayerProblem("global_pooling", "needs pad 0 and stride 1")
            return PoolParams(method, None, stride, pad, ceil, True, len(layer.top) == 2)
        if not has_kernel:
            raise LayerProblem("kernel_size", "must be given (or global_pooling: true)")
        kernel = spatial([], opt(p, "kernel_size"), opt(p, "kernel_h"), opt(p, "kernel_w"), 2, 0, "kernel")
        if min(kernel) <= 0:
            raise LayerProblem("kernel_size", "must be positive")
        if any(pd >= k for pd, k in zip(pad, kernel)):
            raise LayerProblem("pad", f"pad {list(pad)} must be smaller than kernel {list(kernel)}")
        return PoolParams(method, kernel, stride, pad, ceil, mask=len(layer.top) == 2)

    @staticmethod
    def infer(params, shapes):
        shape = shapes[0]
        if len(shape) != 4:
            raise LayerProblem("bottom", f"Caffe pools 4-D blobs only, got {len(shape)} axes")
        full = dataclasses.replace(params, kernel=pool_kernel(params, shape[2:]))
        top = (shape[0], shape[1], *pooled_size(full, shape[2:]))
        return Inferred([top] * (2 if params.mask else 1), [], full)


def pool_kernel(params: PoolParams, spatial_in: tuple[int, ...]) -> tuple[int, int]:
    return tuple(spatial_in) if params.kernel is None else params.kernel


def pooled_size(params: PoolParams, spatial_in: tuple[int, ...]) -> tuple[int, int]:
    """Caffe's PoolingLayer::Reshape output size, including the last-window adjustment."""
    kernel = pool_kernel(params, spatial_in)
    out = []
    for d, k, s, p in zip(spatial_in, kernel, params.stride, params.pad):
        span = (d + 2 * p - k) / s  # Caffe divides as float before rounding
        o = (math.ceil(span) if params.ceil else math.floor(span)) + 1
        if any(params.pad) and (o - 1) * s >= d + p:
            o -= 1  # the last window would start inside the padding: Caffe drops it
        if o <= 0:
            raise LayerProblem("kernel_size", f"kernel {k} exceeds padded input {d + 2 * p}")
        out.append(o)
    return tuple(out)


@dataclass(frozen=True)
class LRNParams:
    local_size: int
    alpha: float
    beta: float
    k: float
    across_channels: bool


@SPECS.register
class LRN(Spec):
    """Local response normalisation: x / (k + alpha/n * sum(x^2 over the window))^beta."""

    type = "LRN"
    param = "lrn_param"
    fields = frozenset({"local_size", "alpha", "beta", "norm_region", "k"})

    @staticmethod
    def parse(p, layer):
        if p.local_size % 2 == 0 or p.local_size <= 0:
            raise LayerProblem("local_size", f"must be odd and positive, got {p.local_size}")
        return LRNParams(p.local_size, p.alpha, p.beta, p.k, p.norm_region == 0)

    @staticmethod
    def infer(params, shapes):
        if len(shapes[0]) != 4:
            raise LayerProblem("bottom", f"LRN needs a 4-D blob, got {len(shapes[0])} axes")
        return Inferred([shapes[0]], [])
