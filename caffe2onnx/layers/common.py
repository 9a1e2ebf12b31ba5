"""Specs of Input, InnerProduct, Concat, Eltwise and Softmax."""
from __future__ import annotations

from dataclasses import dataclass

from .registry import SPECS, Inferred, LayerProblem, Spec, canonical_axis, count, same_shapes


@dataclass(frozen=True)
class InputParams:
    shapes: tuple[tuple[int, ...], ...]


@SPECS.register
class Input(Spec):
    """A net input; its tops' shapes come from input_param.shape (one for all, or one per top)."""

    type = "Input"
    param = "input_param"
    fields = frozenset({"shape"})
    bottoms = (0, 0)
    tops = (1, None)

    @staticmethod
    def parse(p, layer):
        shapes = [tuple(int(d) for d in s.dim) for s in p.shape]
        if len(shapes) not in (0, 1, len(layer.top)):
            raise LayerProblem("shape", f"{len(shapes)} shapes for {len(layer.top)} tops")
        if len(shapes) == 1:
            shapes = shapes * len(layer.top)
        return InputParams(tuple(shapes))

    @staticmethod
    def infer(params, shapes):
        return Inferred(list(params.shapes), [])


@dataclass(frozen=True)
class InnerProductParams:
    num_output: int
    bias_term: bool
    axis: int
    transpose: bool


@SPECS.register
class InnerProduct(Spec):
    """y = x.reshape(outer, K) @ W.T + b, with K = prod(shape[axis:]); W is (N, K) or (K, N) if transpose."""

    type = "InnerProduct"
    param = "inner_product_param"
    fields = frozenset({"num_output", "bias_term", "axis", "transpose"})

    @staticmethod
    def parse(p, layer):
        if p.num_output <= 0:
            raise LayerProblem("num_output", "must be given and positive")
        return InnerProductParams(p.num_output, p.bias_term, p.axis, p.transpose)

    @staticmethod
    def infer(params, shapes):
        shape = shapes[0]
        axis = canonical_axis(params.axis, len(shape))
        k = count(shape[axis:])
        w = (k, params.num_output) if params.transpose else (params.num_output, k)
        weights = [w, (params.num_output,)] if params.bias_term else [w]
        resolved = InnerProductParams(params.num_output, params.bias_term, axis, params.transpose)
        return Inferred([(*shape[:axis], params.num_output)], weights, resolved)


@dataclass(frozen=True)
class AxisParams:
    axis: int


def _legacy_axis(p, legacy: str) -> int:
    if p.HasField(legacy):
        if p.HasField("axis"):
            raise LayerProblem(legacy, f"give either axis or {legacy}, not both")
        return getattr(p, legacy)
    return p.axis


@SPECS.register
class Concat(Spec):
    """Joins bottoms along axis (legacy concat_dim); all other dims must agree."""

    type = "Concat"
    param = "concat_param"
    fields = frozenset({"axis", "concat_dim"})
    bottoms = (1, None)

    @staticmethod
    def parse(p, layer):
        return AxisParams(_legacy_axis(p, "concat_dim"))

    @staticmethod
    def infer(params, shapes):
        first = shapes[0]
        axis = canonical_axis(params.axis, len(first))
        for s in shapes[1:]:
            if len(s) != len(first) or s[:axis] != first[:axis] or s[axis + 1:] != first[axis + 1:]:
                raise LayerProblem("axis", f"bottom shapes {[list(x) for x in shapes]} differ off axis {axis}")
        out = (*first[:axis], sum(s[axis] for s in shapes), *first[axis + 1:])
        return Inferred([out], [], AxisParams(axis))


@dataclass(frozen=True)
class EltwiseParams:
    operation: str  # "PROD", "SUM" or "MAX"
    coeffs: tuple[float, ...]  # one per bottom (all 1 unless given)


@SPECS.register
class Eltwise(Spec):
    """Element-wise PROD, SUM (with per-bottom coefficients) or MAX of same-shaped bottoms."""

    type = "Eltwise"
    param = "eltwise_param"
    fields = frozenset({"operation", "coeff", "stable_prod_grad"})
    bottoms = (2, None)

    @staticmethod
    def parse(p, layer):
        op = p.DESCRIPTOR.fields_by_name["operation"].enum_type.values_by_number[p.operation].name
        coeffs = tuple(p.coeff)
        if coeffs and op != "SUM":
            raise LayerProblem("coeff", f"only valid for SUM, not {op}")
        if coeffs and len(coeffs) != len(layer.bottom):
            raise LayerProblem("coeff", f"{len(coeffs)} coefficients for {len(layer.bottom)} bottoms")
        return EltwiseParams(op, coeffs or (1.0,) * len(layer.bottom))

    @staticmethod
    def infer(params, shapes):
        same_shapes(shapes)
        return Inferred([shapes[0]], [])


@SPECS.register
class Softmax(Spec):
    """exp(x - max) / sum(exp(x - max)) along axis."""

    type = "Softmax"
    param = "softmax_param"
    fields = frozenset({"axis"})

    @staticmethod
    def parse(p, layer):
        return AxisParams(p.axis)

    @staticmethod
    def infer(params, shapes):
        return Inferred([shapes[0]], [], AxisParams(canonical_axis(params.axis, len(shapes[0]))))
