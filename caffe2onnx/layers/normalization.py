"""Specs of BatchNorm, Scale, Bias and MVN."""
from __future__ import annotations

from dataclasses import dataclass

from .registry import SPECS, Inferred, LayerProblem, Spec, canonical_axis


@dataclass(frozen=True)
class BatchNormParams:
    use_global_stats: bool
    eps: float


@SPECS.register
class BatchNorm(Spec):
    """(x - mean/f) / sqrt(var/f + eps) per channel, f = the stored moving-average factor (0 -> 0)."""

    type = "BatchNorm"
    param = "batch_norm_param"
    fields = frozenset({"use_global_stats", "eps", "moving_average_fraction"})

    @staticmethod
    def parse(p, layer):
        # At TEST time Caffe uses the stored statistics unless told otherwise.
        use_global = p.use_global_stats if p.HasField("use_global_stats") else True
        return BatchNormParams(use_global, p.eps)

    @staticmethod
    def infer(params, shapes):
        shape = shapes[0]
        c = shape[1] if len(shape) > 1 else 1
        return Inferred([shape], [(c,), (c,), (1,)])


@dataclass(frozen=True)
class ScaleParams:
    axis: int
    num_axes: int  # resolved: number of bottom axes the scale covers
    bias_term: bool
    second_bottom: bool


def _affine_param_shape(axis: int, num_axes: int, shapes) -> tuple[int, int, tuple[int, ...]]:
    shape = shapes[0]
    if len(shapes) == 2:
        other = shapes[1]
        axis = canonical_axis(axis, len(shape)) if len(other) else 0
        if tuple(shape[axis:axis + len(other)]) != tuple(other):
            raise LayerProblem("axis", f"second bottom {list(other)} does not match {list(shape)} from axis {axis}")
        return axis, len(other), tuple(other)
    axis = canonical_axis(axis, len(shape)) if len(shape) else 0
    if num_axes < -1:
        raise LayerProblem("num_axes", "must be >= -1")
    end = len(shape) if num_axes == -1 else axis + num_axes
    if end > len(shape):
        raise LayerProblem("num_axes", f"{num_axes} axes from {axis} exceed {len(shape)}")
    return axis, end - axis, tuple(shape[axis:end])


@SPECS.register
class Scale(Spec):
    """y = x * s (+ b), s broadcast over axes [axis, axis+num_axes); s is a blob or the second bottom."""

    type = "Scale"
    param = "scale_param"
    fields = frozenset({"axis", "num_axes", "bias_term"})
    bottoms = (1, 2)

    @staticmethod
    def parse(p, layer):
        return ScaleParams(p.axis, p.num_axes, p.bias_term, len(layer.bottom) == 2)

    @staticmethod
    def infer(params, shapes):
        axis, n, pshape = _affine_param_shape(params.axis, params.num_axes, shapes)
        weights = [] if params.second_bottom else [pshape]
        if params.bias_term:
            weights.append(pshape)
        return Inferred([shapes[0]], weights, ScaleParams(axis, n, params.bias_term, params.second_bottom))


@SPECS.register
class Bias(Spec):
    """y = x + b, b broadcast over axes [axis, axis+num_axes); b is a blob or the second bottom."""

    type = "Bias"
    param = "bias_param"
    fields = frozenset({"axis", "num_axes"})
    bottoms = (1, 2)

    @staticmethod
    def parse(p, layer):
        return ScaleParams(p.axis, p.num_axes, False, len(layer.bottom) == 2)

    @staticmethod
    def infer(params, shapes):
        axis, n, pshape = _affine_param_shape(params.axis, params.num_axes, shapes)
        weights = [] if params.second_bottom else [pshape]
        return Inferred([shapes[0]], weights, ScaleParams(axis, n, False, params.second_bottom))


@dataclass(frozen=True)
class MVNParams:
    normalize_variance: bool
    across_channels: bool
    eps: float


@SPECS.register
class MVN(Spec):
    """Subtract the mean (and divide by std + eps) over H,W per channel, or over C,H,W."""

    type = "MVN"
    param = "mvn_param"
    fields = frozenset({"normalize_variance", "across_channels", "eps"})

    @staticmethod
    def parse(p, layer):
        return MVNParams(p.normalize_variance, p.across_channels, p.eps)

    @staticmethod
    def infer(params, shapes):
        # Caffe reads num/channels/height/width (missing trailing axes count as 1) and its top is 4-D.
        if len(shapes[0]) > 4:
            raise LayerProblem("bottom", f"MVN takes at most 4 axes, got {len(shapes[0])}")
        return Inferred([(*shapes[0], *(1,) * (4 - len(shapes[0])))], [])
