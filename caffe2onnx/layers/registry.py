"""Layer specs: how each Caffe layer type's parameters normalise and its shapes follow.

A spec is a class with two static methods, registered on a ``SpecRegistry``
object: ``parse(param, layer)`` turns the Caffe parameter message into a frozen
params object (rejecting values we cannot honour) and ``infer(params, shapes)``
applies Caffe's own shape rules, returning output shapes and the weight shapes
the layer needs.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Iterable

from ..errors import ShapeError, UnsupportedLayerError
from ..ir import Shape

# Types whose in-place form (top == bottom) computes what the out-of-place form does, checked
# against real Caffe. Eltwise in place is modelled by its mapping. Others (LRN, Pooling,
# Convolution, InnerProduct...) read their input after overwriting it, and Caffe itself
# refuses AbsVal, Split, Flatten and Reshape in place: those are rejected.
IN_PLACE_SAFE = frozenset({
    "ReLU", "Sigmoid", "TanH", "ELU", "BNLL", "Power", "Exp", "Log", "Threshold", "Dropout",
    "PReLU", "BatchNorm", "Scale", "Bias", "MVN", "Softmax", "Eltwise", "BN",
    "ReLU6", "HardSwish", "HardSigmoid", "BatchNormKyle",
})
# Fields of any *_param message that only matter for training or for the engine choice.
NEUTRAL_PARAM_FIELDS = frozenset({"engine", "weight_filler", "bias_filler", "filler"})


@dataclass(frozen=True)
class Inferred:
    outputs: list[Shape]
    weights: list[Shape]
    params: Any = None  # fully resolved params where they depend on input shapes


class Spec:
    """Base for layer specs; subclasses set the class attributes and override the methods."""

    type: ClassVar[str]
    param: ClassVar[str | None] = None  # name of the LayerParameter field holding the params
    fields: ClassVar[frozenset[str]] = frozenset()  # param fields whose values we honour
    bottoms: ClassVar[tuple[int, int | None]] = (1, 1)  # (min, max); None = unbounded
    tops: ClassVar[tuple[int, int | None]] = (1, 1)

    @staticmethod
    def parse(p: Any, layer: Any) -> Any:
        return None

    @staticmethod
    def infer(params: Any, shapes: list[Shape]) -> Inferred:
        return Inferred([shapes[0]], [])

    @staticmethod
    def caffe_form(layer: Any) -> None:
        """Spells out, in ``layer`` (the copy written for real Caffe to run), defaults that our
        semantics take from the original fork where the installed Caffe's schema differs."""


class LayerProblem(Exception):
    """Raised inside a spec: the layer uses a parameter value we cannot honour."""

    def __init__(self, field: str, detail: str):
        super().__init__(f"{field}: {detail}")
        self.field = field
        self.detail = detail


class SpecRegistry:
    """A registry object (not module globals) mapping Caffe type names to specs."""

    def __init__(self, plugins: bool = False) -> None:
        self._specs: dict[str, type[Spec]] = {}
        self._plugins = plugins  # look unknown types up in the caffe2onnx.layers entry points

    def _known(self, type_name: str) -> bool:
        if type_name not in self._specs and self._plugins:
            from ..plugins import load_plugin_for  # lazily: only for a type a net actually uses
            load_plugin_for(type_name)
        return type_name in self._specs

    def register(self, spec: type[Spec]) -> type[Spec]:
        if spec.type in self._specs:
            raise ValueError(f"spec for {spec.type} registered twice")
        self._specs[spec.type] = spec
        return spec

    def __contains__(self, type_name: str) -> bool:
        return type_name in self._specs

    def get(self, type_name: str) -> type[Spec]:
        return self._specs[type_name]

    def types(self) -> list[str]:
        return sorted(self._specs)

    def problems(self, layer: Any) -> list[tuple[str, str, str]]:
        """Every reason this layer cannot be honoured, without running shape inference."""
        name, type_name = layer.name, layer.type
        if not self._known(type_name):
            return [(name, type_name, _unknown(layer))]
        spec = self._specs[type_name]
        out = []
        counts = (("bottom", len(layer.bottom), spec.bottoms), ("top", len(layer.top), spec.tops))
        for what, n, (lo, hi) in counts:
            if n < lo or (hi is not None and n > hi):
                want = f"{lo}" if lo == hi else f"{lo}..{hi if hi is not None else 'n'}"
                out.append((name, type_name, f"has {n} {what}(s), Caffe's {type_name} takes {want}"))
        in_place = [t for t, b in zip(layer.top, layer.bottom) if t == b]
        if in_place and type_name not in IN_PLACE_SAFE:
            out.append((name, type_name, f"runs in place (top '{in_place[0]}' is also its bottom); Caffe's "
                        f"in-place {type_name} does not compute what the layer means: give it its own top"))
        if spec.param is not None and spec.param not in layer.DESCRIPTOR.fields_by_name:
            out.append((name, type_name, f"the caffe.proto this net was read with has no field {spec.param}: "
                        "give the fork's own caffe.proto (--caffe-proto / caffe_proto=)"))
        elif spec.param is not None and layer.HasField(spec.param):
            for fd, _ in getattr(layer, spec.param).ListFields():
                if fd.name not in spec.fields and fd.name not in NEUTRAL_PARAM_FIELDS:
                    out.append((name, type_name, f"field {spec.param}.{fd.name} is not supported"))
        return out

    def parse(self, layer: Any) -> Any:
        spec = self._specs[layer.type]
        p = getattr(layer, spec.param) if spec.param else None
        try:
            return spec.parse(p, layer)
        except LayerProblem as e:
            field = f"{spec.param}.{e.field}" if spec.param else e.field
            raise UnsupportedLayerError([(layer.name, layer.type, f"field {field}: {e.detail}")]) from None

    def infer(self, layer_name: str, type_name: str, params: Any, shapes: list[Shape]) -> Inferred:
        try:
            return self._specs[type_name].infer(params, shapes)
        except LayerProblem as e:
            raise ShapeError(f"layer '{layer_name}' (type {type_name}): {e.field}: {e.detail}; "
                             f"input shapes {[list(s) for s in shapes]}") from None


SPECS = SpecRegistry(plugins=True)


def _unknown(layer: Any) -> str:
    """Why a type is refused; a Python layer's code is never imported, so only a plugin can convert it."""
    if layer.type == "Python":
        p = layer.python_param
        return (f"is a Python layer (python_param module '{p.module}', layer '{p.layer}'); caffe2onnx never "
                "imports or runs a net's Python code: register a plugin for type 'Python' to convert it "
                "(see 'Plugins' in the README)")
    return "unknown layer type (a plugin can add it: see 'Plugins' in the README)"


def spatial(values: Iterable[int], single: int | None, h: int | None, w: int | None,
            n: int, default: int, name: str) -> tuple[int, ...]:
    """Caffe's rule for repeated kernel/stride/pad/dilation fields with _h/_w variants."""
    values = list(values)
    if h is not None or w is not None:
        if n != 2:
            raise LayerProblem(f"{name}_h/{name}_w", "only valid for 2 spatial axes")
        if values or single is not None:
            raise LayerProblem(name, f"give either {name} or {name}_h/{name}_w, not both")
        if h is None or w is None:
            raise LayerProblem(f"{name}_h/{name}_w", "both must be given")
        return (h, w)
    if single is not None:
        values = [single]
    if not values:
        return (default,) * n
    if len(values) == 1:
        return (values[0],) * n
    if len(values) != n:
        raise LayerProblem(name, f"has {len(values)} values for {n} spatial axes")
    return tuple(values)


def opt(p: Any, field: str) -> Any:
    """The field's value if explicitly set, else None."""
    return getattr(p, field) if p.HasField(field) else None


def canonical_axis(axis: int, ndim: int, field: str = "axis") -> int:
    if not -ndim <= axis < ndim:
        raise LayerProblem(field, f"axis {axis} out of range for a {ndim}-D blob")
    return axis % ndim


def same_shapes(shapes: list[Shape], what: str = "bottom") -> None:
    for s in shapes[1:]:
        if s != shapes[0]:
            raise LayerProblem(what, f"all bottoms must have the same shape, got {[list(x) for x in shapes]}")


def count(shape: Iterable[int]) -> int:
    n = 1
    for d in shape:
        n *= d
    return n

