"""The parts of onnx a conversion needs, without the cost of ``import onnx``.

``import onnx`` runs ``onnx.helper``, which (onnx >= 1.18) imports ml_dtypes,
whose float8/int4 registration with numpy 2.x takes 0.6-0.9 s: more than the
whole rest of converting a 550 MB model. A conversion needs only the protobuf
classes (``onnx/onnx_ml_pb2.py``, plain generated code), onnx's C++ checker and
shape inference (``onnx.onnx_cpp2py_export``), and a handful of constructors.
This module loads the first two under their own module names, so a later
``import onnx`` in the same process finds and reuses them (same classes, same
descriptors), and implements the constructors below. Once ``onnx`` itself is
imported (tests, validation), its own modules are used.
"""
from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import numbers
import sys
from types import ModuleType, SimpleNamespace

import numpy as np


def _submodule(name: str) -> ModuleType:
    """onnx.<name>, loaded without running onnx/__init__.py (or the loaded one)."""
    full = f"onnx.{name}"
    if full in sys.modules:
        return sys.modules[full]
    spec = importlib.util.find_spec("onnx")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("onnx is not installed")
    finder = importlib.machinery.PathFinder()
    sub = finder.find_spec(full, list(spec.submodule_search_locations))
    if sub is None:
        raise ImportError(f"{full} not found")
    module = importlib.util.module_from_spec(sub)
    sys.modules[full] = module
    try:
        sub.loader.exec_module(module)
    except BaseException:
        del sys.modules[full]
        raise
    return module


class _BindOnLoad(importlib.abc.MetaPathFinder):
    """When ``onnx`` itself is imported later, its submodules loaded here become its attributes
    first, exactly as if it had loaded them (Python binds a submodule to its package only when
    it loads it)."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname != "onnx":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec("onnx")
        if spec is not None and spec.loader is not None:
            spec.loader = _BindingLoader(spec.loader)
        return spec


class _BindingLoader(importlib.abc.Loader):
    def __init__(self, loader):
        self.loader = loader

    def __getattr__(self, name):  # get_data, is_package, get_resource_reader, ...: the real loader's
        return getattr(self.loader, name)

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        for name in ("onnx_ml_pb2", "onnx_cpp2py_export"):
            if f"onnx.{name}" in sys.modules:
                setattr(module, name, sys.modules[f"onnx.{name}"])
        self.loader.exec_module(module)


if "onnx" in sys.modules:
    import onnx as _onnx
    pb = _onnx.onnx_ml_pb2
    C = _onnx.onnx_cpp2py_export
else:
    pb = _submodule("onnx_ml_pb2")
    C = _submodule("onnx_cpp2py_export")
    sys.meta_path.insert(0, _BindOnLoad())

ModelProto, GraphProto, NodeProto, TensorProto = pb.ModelProto, pb.GraphProto, pb.NodeProto, pb.TensorProto
ValueInfoProto, AttributeProto, OperatorSetIdProto = pb.ValueInfoProto, pb.AttributeProto, pb.OperatorSetIdProto
StringStringEntryProto = pb.StringStringEntryProto
ValidationError = C.checker.ValidationError
InferenceError = C.shape_inference.InferenceError

# ai.onnx opset -> the oldest IR version that carries it (onnx.helper.VERSION_TABLE; tested against it)
_IR_FOR_OPSET = {11: 6, 12: 7, 13: 7, 14: 7, 15: 8, 16: 8, 17: 8, 18: 8, 19: 9, 20: 9, 21: 10, 22: 10, 23: 11,
                 24: 12, 25: 13, 26: 13}
_NP_TO_ONNX = {np.dtype("float32"): TensorProto.FLOAT, np.dtype("float64"): TensorProto.DOUBLE,
               np.dtype("int64"): TensorProto.INT64, np.dtype("int32"): TensorProto.INT32,
               np.dtype("int8"): TensorProto.INT8, np.dtype("uint8"): TensorProto.UINT8,
               np.dtype("bool"): TensorProto.BOOL}


def opset_version() -> int:
    """The newest ai.onnx opset this onnx knows."""
    return C.defs.schema_version_map()[""][1]


def onnx_version() -> str:
    from importlib.metadata import version
    return version("onnx")


def from_array(arr: np.ndarray, name: str | None = None) -> TensorProto:
    """numpy_helper.from_array for the dtypes a conversion makes."""
    arr = np.asarray(arr)
    dtype = _NP_TO_ONNX.get(arr.dtype)
    if dtype is None:
        import onnx.numpy_helper
        return onnx.numpy_helper.from_array(arr, name)
    return TensorProto(name=name, data_type=dtype, dims=arr.shape,
                       raw_data=np.ascontiguousarray(arr, arr.dtype.newbyteorder("<")).tobytes())


def make_attribute(key: str, value) -> AttributeProto:
    a = AttributeProto(name=key)
    if isinstance(value, (bool, numbers.Integral)):
        a.i, a.type = int(value), AttributeProto.INT
    elif isinstance(value, numbers.Real):
        a.f, a.type = float(value), AttributeProto.FLOAT
    elif isinstance(value, (str, bytes)):
        a.s, a.type = value.encode() if isinstance(value, str) else value, AttributeProto.STRING
    elif isinstance(value, TensorProto):
        a.t.CopyFrom(value)
        a.type = AttributeProto.TENSOR
    elif isinstance(value, GraphProto):  # a Loop or If body
        a.g.CopyFrom(value)
        a.type = AttributeProto.GRAPH
    else:
        values = list(value)
        if not values:
            raise ValueError(f"attribute {key}: cannot infer the type of an empty list")
        if all(isinstance(v, (bool, numbers.Integral)) for v in values):
            a.ints.extend(int(v) for v in values)
            a.type = AttributeProto.INTS
        elif all(isinstance(v, numbers.Real) for v in values):
            a.floats.extend(float(v) for v in values)
            a.type = AttributeProto.FLOATS
        elif all(isinstance(v, str) for v in values):
            a.strings.extend(v.encode() for v in values)
            a.type = AttributeProto.STRINGS
        else:
            raise ValueError(f"attribute {key}: unsupported value {value!r}")
    return a


def get_attribute_value(a: AttributeProto):
    return {AttributeProto.INT: lambda: a.i, AttributeProto.FLOAT: lambda: a.f, AttributeProto.STRING: lambda: a.s,
            AttributeProto.TENSOR: lambda: a.t, AttributeProto.GRAPH: lambda: a.g, AttributeProto.INTS: lambda: list(a.ints),
            AttributeProto.FLOATS: lambda: list(a.floats), AttributeProto.STRINGS: lambda: list(a.strings)}[a.type]()


def make_node(op_type: str, inputs, outputs, name: str | None = None, domain: str | None = None,
              **attrs) -> NodeProto:
    node = NodeProto(op_type=op_type, input=inputs, output=outputs)
    if name:
        node.name = name
    if domain is not None:
        node.domain = domain
    node.attribute.extend(make_attribute(k, v) for k, v in sorted(attrs.items()) if v is not None)
    return node


def make_tensor_value_info(name: str, elem_type: int, shape) -> ValueInfoProto:
    vi = ValueInfoProto(name=name)
    t = vi.type.tensor_type
    t.elem_type = elem_type
    if shape is not None:
        t.shape.SetInParent()
        for d in shape:
            dim = t.shape.dim.add()
            if isinstance(d, str):
                dim.dim_param = d
            elif d is not None:
                dim.dim_value = int(d)
    return vi


def make_graph(nodes, name: str, inputs, outputs, initializer=()) -> GraphProto:
    return GraphProto(node=nodes, name=name, input=inputs, output=outputs, initializer=initializer)


def make_opsetid(domain: str, version: int) -> OperatorSetIdProto:
    return OperatorSetIdProto(domain=domain, version=version)


def make_model(graph: GraphProto, opset_imports, producer_name: str = "", producer_version: str = "") -> ModelProto:
    return ModelProto(graph=graph, opset_import=opset_imports, producer_name=producer_name,
                      producer_version=producer_version, ir_version=pb.IR_VERSION)


def find_min_ir_version_for(opsets) -> int:
    versions = [o.version for o in opsets if o.domain in ("", "ai.onnx")]
    if all(v in _IR_FOR_OPSET for v in versions):
        return max((_IR_FOR_OPSET[v] for v in versions), default=3)
    import onnx.helper
    return onnx.helper.find_min_ir_version_for(opsets)


def set_model_props(model: ModelProto, props: dict[str, str]) -> None:
    del model.metadata_props[:]
    model.metadata_props.extend(StringStringEntryProto(key=k, value=v) for k, v in props.items())


def check_model(model: ModelProto, full_check: bool = False) -> None:
    """onnx.checker.check_model on an in-memory model."""
    data = model.SerializeToString()
    for extra in ((False, False), (False,), ()):  # the C signature grew over onnx releases
        try:
            C.checker.check_model(data, full_check, *extra)
            return
        except TypeError:  # pybind's "incompatible function arguments"
            continue
    raise TypeError("onnx.onnx_cpp2py_export.checker.check_model: no known signature")


def infer_shapes(model: ModelProto, check_type: bool, strict_mode: bool, data_prop: bool) -> None:
    """onnx.shape_inference.infer_shapes, for its errors only."""
    C.shape_inference.infer_shapes(model.SerializeToString(), check_type, strict_mode, data_prop)


helper = SimpleNamespace(make_node=make_node, make_tensor_value_info=make_tensor_value_info, make_graph=make_graph,
                         make_opsetid=make_opsetid, make_model=make_model, set_model_props=set_model_props,
                         find_min_ir_version_for=find_min_ir_version_for, get_attribute_value=get_attribute_value,
                         make_attribute=make_attribute)
numpy_helper = SimpleNamespace(from_array=from_array)
