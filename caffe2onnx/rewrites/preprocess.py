"""Caffe's input preprocessing baked into the graph (``convert --mean/--scale/--input-order/...``).

Caffe's DataTransformer computes ``(x - mean) * scale`` on a CHW float image whose channels
are in the net's order (BGR for nets trained from OpenCV-decoded data, i.e. most Caffe
models). The baked graph takes the raw image instead, e.g. uint8 NHWC RGB as decoders give
it, and computes: Cast to float -> Transpose NHWC->NCHW -> channel reorder (RGB -> the
net's BGR) -> Sub mean -> Mul scale, then feeds the net. The graph input keeps the net
input's name; the preprocessed tensor gets a fresh name and every node that read the
input reads it. What was baked is recorded in the model's metadata
(``caffe2onnx.preprocess.*``) so the validator can feed the raw image to the model and the
preprocessed one to Caffe.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import ConversionError
from ..onnx_lite import NodeProto, TensorProto, helper, numpy_helper

from . import Graph, unique_name

PROPS_PREFIX = "caffe2onnx.preprocess."
NODE_PREFIX = "caffe2onnx.preprocess/"  # the baked nodes' names (kept float32 by --fp16)
DTYPES = {"float32": TensorProto.FLOAT, "uint8": TensorProto.UINT8}


@dataclass(frozen=True)
class InputPreprocess:
    """What the model input holds: ``(x - mean) * scale`` is computed in the net's (BGR) channel order."""

    mean: tuple[float, ...] | None = None  # one value, or one per channel, in the net's channel order
    scale: float = 1.0
    order: str = "bgr"  # channel order of the model input; the net's is BGR
    layout: str = "nchw"  # or "nhwc"
    dtype: str = "float32"  # or "uint8"

    def __post_init__(self):
        if self.order not in ("bgr", "rgb"):
            raise ConversionError(f"input order must be rgb or bgr, not {self.order!r}")
        if self.layout not in ("nchw", "nhwc"):
            raise ConversionError(f"input layout must be nchw or nhwc, not {self.layout!r}")
        if self.dtype not in DTYPES:
            raise ConversionError(f"input dtype must be {' or '.join(DTYPES)}, not {self.dtype!r}")
        if not np.isfinite(self.scale) or (self.mean is not None and not np.all(np.isfinite(self.mean))):
            raise ConversionError("--mean and --scale must be finite numbers")

    @property
    def is_identity(self) -> bool:
        return self == InputPreprocess()

    def raw_shape(self, shape: tuple) -> tuple:
        """The model input's shape for a net input of (N, C, H, W) ``shape``."""
        return (shape[0], *shape[2:], shape[1]) if self.layout == "nhwc" else tuple(shape)

    def apply(self, raw: np.ndarray) -> np.ndarray:
        """The net's float32 NCHW input for a raw model input, as the baked graph computes it."""
        x = raw.astype(np.float32)
        if self.layout == "nhwc":
            x = x.transpose(0, 3, 1, 2)
        if self.order == "rgb":
            x = x[:, ::-1]
        if self.mean is not None:
            x = x - np.asarray(self.mean, np.float32).reshape(1, -1, 1, 1)
        return np.ascontiguousarray(x * np.float32(self.scale), np.float32)

    def props(self, name: str) -> dict[str, str]:
        """The model metadata recording what was baked for input ``name``."""
        return {PROPS_PREFIX + k: v for k, v in (
            ("input", name), ("mean", ",".join(f"{m:g}" for m in self.mean or ())), ("scale", f"{self.scale!r}"),
            ("order", self.order), ("layout", self.layout), ("dtype", self.dtype))}


def model_preprocess(model) -> tuple[str, InputPreprocess] | None:
    """(input name, what was baked) from a converted model's metadata; None if nothing was."""
    p = {e.key[len(PROPS_PREFIX):]: e.value for e in model.metadata_props if e.key.startswith(PROPS_PREFIX)}
    if "input" not in p:
        return None
    mean = tuple(float(m) for m in p["mean"].split(",")) if p.get("mean") else None
    return p["input"], InputPreprocess(mean, float(p["scale"]), p["order"], p["layout"], p["dtype"])


def target_input(inputs, shapes, spec: InputPreprocess) -> str:
    """The one net input that preprocessing applies to: a 4-D image input."""
    images = [n for n in inputs if len(shapes.get(n, ())) == 4]
    if len(images) != 1:
        raise ConversionError(f"baked preprocessing needs exactly one 4-D (N, C, H, W) net input, the net has "
                              f"{len(images)} among {len(inputs)} input(s) ({', '.join(inputs[:5])})")
    (name,) = images
    c = shapes[name][1]
    if spec.order == "rgb" and c != 3:
        raise ConversionError(f"--input-order rgb: input '{name}' has {c} channel(s), not 3")
    if spec.mean is not None and len(spec.mean) not in (1, c):
        raise ConversionError(f"--mean has {len(spec.mean)} values for input '{name}' with {c} channel(s)")
    return name


def bake_preprocess(g: Graph, spec: InputPreprocess) -> Graph:
    """The graph reading the raw input: preprocessing nodes in front of every consumer of the net input."""
    if spec.is_identity:
        return g
    x = target_input(g.inputs, g.shapes, spec)
    names = g.names()
    nodes: list = []
    consts: list = []

    def fresh(hint: str) -> str:
        return unique_name(f"{x}/preprocess/{hint}", names)

    def node(op, ins, **attrs) -> str:
        out = fresh(op.lower())
        nodes.append(helper.make_node(op, ins, [out], name=NODE_PREFIX + out, **attrs))
        return out

    def const(value, hint, dtype=np.float32) -> str:
        name = fresh(hint)
        consts.append(numpy_helper.from_array(np.asarray(value, dtype), name))
        return name

    t = x
    if spec.dtype != "float32":
        t = node("Cast", [t], to=TensorProto.FLOAT)
    if spec.layout == "nhwc":
        t = node("Transpose", [t], perm=[0, 3, 1, 2])
    if spec.order == "rgb":  # the model input is RGB, the net's channels are BGR
        t = node("Gather", [t, const([2, 1, 0], "bgr", np.int64)], axis=1)
    if spec.mean is not None:
        t = node("Sub", [t, const(np.reshape(spec.mean, (-1, 1, 1)), "mean")])
    if spec.scale != 1.0:
        t = node("Mul", [t, const(spec.scale, "scale")])
    if t == x:  # e.g. float32 NCHW BGR with no mean: nothing to compute
        return g
    rewired = [_reading(n, x, t) for n in g.nodes]
    # aliases of the input keep naming it: the validator holds the net's (preprocessed) input under that name
    return g.with_(nodes=tuple(nodes + rewired), constants=tuple(g.constants) + tuple(consts))


def _reading(n: NodeProto, old: str, new: str) -> NodeProto:
    """``n``, or a copy of it reading ``new`` where it read ``old`` (nodes are never mutated)."""
    if old not in n.input:
        return n
    m = NodeProto()
    m.CopyFrom(n)
    m.input[:] = [new if i == old else i for i in n.input]
    return m


def raw_value_info(name: str, shape: tuple, spec: InputPreprocess):
    """The model input's ValueInfo: the raw image's dtype and layout."""
    return helper.make_tensor_value_info(name, DTYPES[spec.dtype], list(spec.raw_shape(shape)))
