"""The mapping registry and the graph builder that mapping functions write into.

A mapping is a small function ``(layer, g) -> None`` that emits ONNX nodes
computing ``layer.outputs`` from ``layer.inputs``, registered with
``@MAPPINGS.register("CaffeType")``. It sees only the normalised ``Layer``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
from .. import onnx_lite as onnx
from ..onnx_lite import helper, numpy_helper  # not `import onnx`: see onnx_lite

from ..errors import UnsupportedLayerError
from ..ir import Layer

MappingFn = Callable[[Layer, "GraphBuilder"], None]
CheckFn = Callable[[Layer, "BuildOptions"], "str | None"]


@dataclass(frozen=True)
class BuildOptions:
    opset: int
    dynamic_batch: bool = False


@dataclass(frozen=True)
class Mapping:
    caffe_type: str
    fn: MappingFn
    check: CheckFn | None
    doc: str


class MappingRegistry:
    """Caffe layer type -> mapping function. An object, so tests can build their own."""

    def __init__(self) -> None:
        self._mappings: dict[str, Mapping] = {}

    def register(self, caffe_type: str, check: CheckFn | None = None) -> Callable[[MappingFn], MappingFn]:
        """Decorator. ``check(layer, options)`` may return why a layer cannot be mapped."""
        def deco(fn: MappingFn) -> MappingFn:
            if caffe_type in self._mappings:
                raise ValueError(f"mapping for {caffe_type} registered twice")
            doc = (fn.__doc__ or "").strip().splitlines()[0] if fn.__doc__ else ""
            self._mappings[caffe_type] = Mapping(caffe_type, fn, check, doc)
            return fn
        return deco

    def __contains__(self, caffe_type: str) -> bool:
        return caffe_type in self._mappings

    def get(self, caffe_type: str) -> Mapping:
        return self._mappings[caffe_type]

    def types(self) -> list[str]:
        return sorted(self._mappings)

    def preflight(self, net, options: BuildOptions) -> None:
        """Raises one UnsupportedLayerError listing every layer that cannot be mapped."""
        problems = []
        for layer in net.layers:
            m = self._mappings.get(layer.type)
            if m is None:
                problems.append((layer.name, layer.type, "no ONNX mapping for this layer type"))
                continue
            if m.check is not None:
                why = m.check(layer, options)
                if why:
                    problems.append((layer.name, layer.type, why))
        if problems:
            raise UnsupportedLayerError(problems)


MAPPINGS = MappingRegistry()


@dataclass
class GraphBuilder:
    """Collects nodes and initializers; offers opset-aware helpers for common patterns."""

    options: BuildOptions
    nodes: list[onnx.NodeProto] = field(default_factory=list)
    initializers: list[onnx.TensorProto] = field(default_factory=list)  # small constants
    # Layer weights stay numpy arrays (often views on the caffemodel's bytes) until the
    # model is written, so a large model is never held twice in memory.
    weights: list[tuple[str, np.ndarray]] = field(default_factory=list)
    _names: set[str] = field(default_factory=set)
    _taken: set[str] | frozenset[str] = frozenset()  # the net's tensor names, shared, never copied
    _layer: Layer | None = None
    _node_count: int = 0

    @property
    def opset(self) -> int:
        return self.options.opset

    def begin(self, layer: Layer, taken: set[str]) -> None:
        self._layer = layer
        self._node_count = 0
        # Kept by reference: a union per layer made conversion quadratic in the layer count.
        self._taken = taken

    def fresh(self, hint: str) -> str:
        """A tensor name unique in the graph, derived from the current layer's name."""
        base = f"{self._layer.name}/{hint}" if self._layer else hint
        name, k = base, 1
        while name in self._names or name in self._taken:
            k += 1
            name = f"{base}_{k}"
        self._names.add(name)
        return name

    def node(self, op_type: str, inputs: list[str], outputs: list[str] | int = 1, **attrs: Any) -> list[str]:
        """Adds a node named after the Caffe layer; returns its output names."""
        if isinstance(outputs, int):
            outputs = [self.fresh(op_type.lower()) for _ in range(outputs)]
        layer = self._layer.name if self._layer else op_type
        name = layer if self._node_count == 0 else f"{layer}/{op_type}_{self._node_count}"
        self._node_count += 1
        attrs = {k: v for k, v in attrs.items() if v is not None}
        self.nodes.append(helper.make_node(op_type, inputs, outputs, name=name, **attrs))
        return outputs

    def weight(self, index: int, array: np.ndarray | None = None) -> str:
        """Adds blob ``index`` of the current layer (or a transform of it) as ``layer/blobN``."""
        arr = self._layer.weights[index] if array is None else array
        name = f"{self._layer.name}/blob{index}"
        if name in self._names or name in self._taken:
            name = self.fresh(f"blob{index}")
        self._names.add(name)
        self.weights.append((name, np.asarray(arr, dtype=np.float32)))
        return name

    def const(self, value: Any, hint: str = "const", dtype: Any = None) -> str:
        """A small constant initializer (shapes, axes, scalars)."""
        arr = np.asarray(value, dtype=dtype) if dtype is not None else np.asarray(value)
        if arr.dtype == np.float64:
            arr = arr.astype(np.float32)
        name = self.fresh(hint)
        self.initializers.append(numpy_helper.from_array(arr, name))
        return name

    # Opset-aware helpers: these ops moved attributes to inputs over the opsets.
    def reduce(self, op: str, x: str, axes: list[int], keepdims: bool = True,
               out: list[str] | None = None) -> str:
        if op == "ReduceSum" and self.opset >= 13 or self.opset >= 18:
            return self.node(op, [x, self.const(axes, "axes", np.int64)], out or 1, keepdims=int(keepdims))[0]
        return self.node(op, [x], out or 1, axes=list(axes), keepdims=int(keepdims))[0]

    def unsqueeze(self, x: str, axes: list[int], out: list[str] | None = None) -> str:
        if self.opset >= 13:
            return self.node("Unsqueeze", [x, self.const(axes, "axes", np.int64)], out or 1)[0]
        return self.node("Unsqueeze", [x], out or 1, axes=list(axes))[0]

    def split(self, x: str, axis: int, sizes: list[int], outs: list[str]) -> list[str]:
        if self.opset >= 13:
            return self.node("Split", [x, self.const(sizes, "split", np.int64)], outs, axis=axis)
        return self.node("Split", [x], outs, axis=axis, split=list(sizes))

    def reshape(self, x: str, shape: list[int], out: list[str] | None = None) -> str:
        """Reshape to ``shape``; with a dynamic batch, a kept leading batch dim becomes 0 (copy)."""
        dims = list(shape)
        if self.options.dynamic_batch and self._layer is not None and dims \
                and self._layer.input_shapes and dims[0] == self._layer.input_shapes[0][0]:
            dims[0] = 0
        return self.node("Reshape", [x, self.const(dims, "shape", np.int64)], out or 1)[0]
