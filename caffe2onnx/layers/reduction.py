"""Specs of BVLC's ArgMax and Reduction."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from .registry import SPECS, Inferred, LayerProblem, Spec, canonical_axis, count, opt


def enum_name(p, field: str) -> str:
    return p.DESCRIPTOR.fields_by_name[field].enum_type.values_by_number[getattr(p, field)].name


@dataclass(frozen=True)
class ArgMaxParams:
    top_k: int
    out_max_val: bool
    axis: int | None  # None: over all axes but the first (Caffe's has_axis false)


@SPECS.register
class ArgMax(Spec):
    """Indices (or values, or both) of the top_k largest entries along axis, or over all of count(1)."""

    type = "ArgMax"
    param = "argmax_param"
    fields = frozenset({"top_k", "out_max_val", "axis"})

    @staticmethod
    def parse(p, layer):
        if p.top_k < 1:
            raise LayerProblem("top_k", "must be at least 1")
        return ArgMaxParams(p.top_k, p.out_max_val, opt(p, "axis"))

    @staticmethod
    def infer(params, shapes):
        shape = shapes[0]
        if params.axis is not None:
            axis = canonical_axis(params.axis, len(shape))
            if params.top_k > shape[axis]:
                raise LayerProblem("top_k", f"{params.top_k} exceeds the axis size {shape[axis]}")
            out = (*shape[:axis], params.top_k, *shape[axis + 1:])
            return Inferred([out], [], dataclasses.replace(params, axis=axis))
        if params.top_k > count(shape[1:]):
            raise LayerProblem("top_k", f"{params.top_k} exceeds count(1) = {count(shape[1:])}")
        out = [1] * max(len(shape), 3)  # Caffe keeps at least 3 axes: (N, 1 or 2, top_k, 1...)
        out[0], out[1], out[2] = shape[0], 2 if params.out_max_val else 1, params.top_k
        return Inferred([tuple(out)], [])


@dataclass(frozen=True)
class ReductionParams:
    operation: str  # SUM, ASUM, SUMSQ, MEAN
    axis: int
    coeff: float


@SPECS.register
class Reduction(Spec):
    """SUM, ASUM (sum |x|), SUMSQ or MEAN over all axes from axis on, times coeff; top shape[:axis]."""

    type = "Reduction"
    param = "reduction_param"
    fields = frozenset({"operation", "axis", "coeff"})

    @staticmethod
    def parse(p, layer):
        return ReductionParams(enum_name(p, "operation"), p.axis, p.coeff)

    @staticmethod
    def infer(params, shapes):
        axis = canonical_axis(params.axis, len(shapes[0]))
        return Inferred([tuple(shapes[0][:axis])], [], dataclasses.replace(params, axis=axis))
