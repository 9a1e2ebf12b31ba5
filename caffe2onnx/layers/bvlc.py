"""Specs of the rest of BVLC's inference layers: Tile, Embed, SPP, Parameter, Im2col, BatchReindex,
Filter (refused), Clip, Swish (ArgMax and Reduction: reduction.py)."""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

from .reduction import enum_name
from .registry import SPECS, Inferred, LayerProblem, Spec, canonical_axis, count, opt, spatial
from .vision import PoolParams, pooled_size


@dataclass(frozen=True)
class TileParams:
    axis: int
    tiles: int


@SPECS.register
class Tile(Spec):
    """The bottom repeated `tiles` times along axis (each outer slice copied whole, tiles times)."""

    type = "Tile"
    param = "tile_param"
    fields = frozenset({"axis", "tiles"})

    @staticmethod
    def parse(p, layer):
        if not p.HasField("tiles") or p.tiles < 1:
            raise LayerProblem("tiles", "must be given and positive")
        return TileParams(p.axis, p.tiles)

    @staticmethod
    def infer(params, shapes):
        shape = shapes[0]
        axis = canonical_axis(params.axis, len(shape))
        out = (*shape[:axis], shape[axis] * params.tiles, *shape[axis + 1:])
        return Inferred([out], [], TileParams(axis, params.tiles))


@dataclass(frozen=True)
class EmbedParams:
    num_output: int
    input_dim: int
    bias_term: bool


@SPECS.register
class Embed(Spec):
    """W[int(x)] (+ b) for every entry of x: top shape = bottom shape + (num_output,); W (input_dim, num_output)."""

    type = "Embed"
    param = "embed_param"
    fields = frozenset({"num_output", "input_dim", "bias_term"})

    @staticmethod
    def parse(p, layer):
        if p.num_output <= 0 or p.input_dim <= 0:
            raise LayerProblem("num_output" if p.num_output <= 0 else "input_dim", "must be given and positive")
        return EmbedParams(p.num_output, p.input_dim, p.bias_term)

    @staticmethod
    def infer(params, shapes):
        weights = [(params.input_dim, params.num_output)] + ([(params.num_output,)] if params.bias_term else [])
        return Inferred([(*shapes[0], params.num_output)], weights)


@dataclass(frozen=True)
class SPPParams:
    method: str
    height: int
    levels: tuple[PoolParams, ...] = ()  # one Caffe pooling per pyramid level, once the input is known
    level_shapes: tuple[tuple[int, ...], ...] = ()


@SPECS.register
class SPP(Spec):
    """Spatial pyramid pooling: level i pools into 2^i x 2^i bins; flattened levels concatenated (height 1: the pool)."""

    type = "SPP"
    param = "spp_param"
    fields = frozenset({"pyramid_height", "pool"})

    @staticmethod
    def parse(p, layer):
        method = enum_name(p, "pool")
        if method not in ("MAX", "AVE"):
            raise LayerProblem("pool", f"{method} pooling is not supported (only MAX and AVE)")
        if p.pyramid_height < 1:
            raise LayerProblem("pyramid_height", "must be given and positive")
        return SPPParams(method, p.pyramid_height)

    @staticmethod
    def infer(params, shapes):
        shape = shapes[0]
        if len(shape) != 4:
            raise LayerProblem("bottom", f"SPP needs 4 axes (N, C, H, W), got {len(shape)}")
        levels, outs = [], []
        for i in range(params.height):
            bins = 2 ** i
            kernel = tuple(math.ceil(d / bins) for d in shape[2:])  # Caffe's GetPoolingParam
            pad = tuple((k * bins - d + 1) // 2 for k, d in zip(kernel, shape[2:]))
            if any(pd >= k for pd, k in zip(pad, kernel)):
                raise LayerProblem("pyramid_height", f"level {i} needs pad {list(pad)} >= kernel {list(kernel)} "
                                   f"for input {list(shape[2:])}, which Caffe's pooling refuses")
            level = PoolParams(params.method, kernel, kernel, pad, True)
            levels.append(level)
            outs.append((shape[0], shape[1], *pooled_size(level, shape[2:])))
        full = dataclasses.replace(params, levels=tuple(levels), level_shapes=tuple(outs))
        if params.height == 1:
            return Inferred([outs[0]], [], full)
        return Inferred([(shape[0], sum(count(o[1:]) for o in outs))], [], full)


@dataclass(frozen=True)
class ParameterParams:
    shape: tuple[int, ...]


@SPECS.register
class Parameter(Spec):
    """A learned blob as a top: top = blob 0, of parameter_param.shape."""

    type = "Parameter"
    param = "parameter_param"
    fields = frozenset({"shape"})
    bottoms = (0, 0)

    @staticmethod
    def parse(p, layer):
        return ParameterParams(tuple(int(d) for d in p.shape.dim))

    @staticmethod
    def infer(params, shapes):
        return Inferred([params.shape], [params.shape])


@dataclass(frozen=True)
class Im2colParams:
    kernel: tuple[int, int]
    stride: tuple[int, int]
    pad: tuple[int, int]
    dilation: tuple[int, int]


@SPECS.register
class Im2col(Spec):
    """Caffe's column buffer: (N, C*kh*kw, oh, ow), row (c*kh + i)*kw + j, zero padding; out as Convolution."""

    type = "Im2col"
    param = "convolution_param"
    # num_output, bias_term and group are read by Caffe's Im2col not at all.
    fields = frozenset({"kernel_size", "kernel_h", "kernel_w", "stride", "stride_h", "stride_w", "pad", "pad_h",
                        "pad_w", "dilation", "axis", "num_output", "bias_term", "group"})

    @staticmethod
    def parse(p, layer):
        if p.axis != 1:
            raise LayerProblem("axis", f"channel axis {p.axis} is not supported (only 1)")
        kernel = spatial(p.kernel_size, None, opt(p, "kernel_h"), opt(p, "kernel_w"), 2, 0, "kernel")
        stride = spatial(p.stride, None, opt(p, "stride_h"), opt(p, "stride_w"), 2, 1, "stride")
        pad = spatial(p.pad, None, opt(p, "pad_h"), opt(p, "pad_w"), 2, 0, "pad")
        dilation = spatial(p.dilation, None, None, None, 2, 1, "dilation")
        for name, vals in (("kernel_size", kernel), ("stride", stride), ("dilation", dilation)):
            if min(vals) <= 0:
                raise LayerProblem(name, f"must be positive, got {list(vals)}")
        return Im2colParams(kernel, stride, pad, dilation)

    @staticmethod
    def infer(params, shapes):
        shape = shapes[0]
        if len(shape) != 4:
            raise LayerProblem("bottom", f"only 2 spatial axes (4-D bottoms) are supported, got {len(shape)} axes")
        out = []
        for d, k, s, pd, dl in zip(shape[2:], params.kernel, params.stride, params.pad, params.dilation):
            o = (d + 2 * pd - (dl * (k - 1) + 1)) // s + 1
            if o <= 0:
                raise LayerProblem("kernel_size", f"kernel extent exceeds the padded input {d + 2 * pd}")
            out.append(o)
        return Inferred([(shape[0], shape[1] * count(params.kernel), *out)], [])


@SPECS.register
class BatchReindex(Spec):
    """top[i] = bottom0[int(bottom1[i])]: items of the batch picked (and repeated) by a 1-D index blob."""

    type = "BatchReindex"
    bottoms = (2, 2)

    @staticmethod
    def infer(params, shapes):
        data, index = shapes
        if len(index) != 1:
            raise LayerProblem("bottom", f"the index blob must be 1-D, got shape {list(index)}")
        return Inferred([(index[0], *data[1:])], [])


@SPECS.register
class Filter(Spec):
    """Items whose selector (last bottom) is non-zero; the output batch is only known at run time."""

    type = "Filter"
    bottoms = (2, None)
    tops = (1, None)

    @staticmethod
    def parse(p, layer):
        if len(layer.top) != len(layer.bottom) - 1:
            raise LayerProblem("top", f"needs one top per filtered bottom ({len(layer.bottom) - 1})")
        raise LayerProblem("bottom", f"the output batch size is the number of non-zero values in the selector "
                           f"'{layer.bottom[-1]}', known only when the net runs; caffe2onnx builds static shapes, "
                           "so Filter cannot be converted exactly")


@dataclass(frozen=True)
class ClipParams:
    min: float
    max: float


@SPECS.register
class Clip(Spec):
    """max(min, min(x, max)), as BVLC's clip_layer.cpp (NaN gives min)."""

    type = "Clip"
    param = "clip_param"
    fields = frozenset({"min", "max"})

    @staticmethod
    def parse(p, layer):
        for f in ("min", "max"):
            if not p.HasField(f):
                raise LayerProblem(f, "is required")
        return ClipParams(p.min, p.max)


@dataclass(frozen=True)
class SwishParams:
    beta: float


@SPECS.register
class Swish(Spec):
    """x * sigmoid(beta * x), as BVLC's swish_layer.cpp."""

    type = "Swish"
    param = "swish_param"
    fields = frozenset({"beta"})

    @staticmethod
    def parse(p, layer):
        return SwishParams(p.beta)
