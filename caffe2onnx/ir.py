"""The frozen, normalised intermediate form that the parser produces.

Mappings and references only ever see this: Caffe's legacy forms (V1 layers,
``input_dim``, in-place blobs, legacy 4-D weight shapes, phase rules) are gone.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Mapping

import numpy as np

Shape = tuple[int, ...]


@dataclass(frozen=True)
class Tensor:
    """One value in the graph. ``blob`` is the Caffe blob it is a version of."""

    name: str
    shape: Shape
    blob: str
    producer: str | None  # layer name; None for a net input


@dataclass(frozen=True)
class Layer:
    """One Caffe layer with normalised parameters, bound weights and unique tensor names."""

    name: str
    type: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    params: Any  # a frozen dataclass defined by the layer's spec in caffe2onnx.layers
    weights: tuple[np.ndarray, ...] = ()  # empty when the net was loaded without weights
    weight_shapes: tuple[Shape, ...] = ()  # what the layer needs, by Caffe's rules
    input_shapes: tuple[Shape, ...] = ()
    output_shapes: tuple[Shape, ...] = ()
    bottoms: tuple[str, ...] = ()  # Caffe blob names, for reports
    tops: tuple[str, ...] = ()


@dataclass(frozen=True)
class Net:
    """A Caffe net in TEST-time form: inputs, layers in execution order, outputs."""

    name: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    layers: tuple[Layer, ...]
    tensors: Mapping[str, Tensor] = field(default_factory=lambda: MappingProxyType({}))
    # The filtered, upgraded Caffe layers this Net was built from (a serialised NetParameter:
    # no rules, no state, data layers replaced by one Input of the shapes used). References
    # run exactly this, never the user's file, so no layer we did not convert can run.
    reference_net: bytes = field(default=b"", repr=False)

    def reference_prototxt(self) -> str:
        """``reference_net`` as prototxt text, for real Caffe and OpenCV."""
        from google.protobuf import text_format

        from . import proto
        from .errors import UsageError
        net = proto.NetParameter()
        net.ParseFromString(self.reference_net)
        net.DiscardUnknownFields()
        if net.ByteSize() != len(self.reference_net):  # read with a fork's schema (--caffe-proto)
            raise UsageError("the net uses fields of its own caffe.proto that real Caffe's schema lacks, so real "
                             "Caffe or OpenCV would run another net: validate with --reference numpy")
        return text_format.MessageToString(net)

    def shape(self, tensor: str) -> Shape:
        return self.tensors[tensor].shape

    def layer(self, name: str) -> Layer:
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise KeyError(name)

    @property
    def parameter_count(self) -> int:
        return sum(int(w.size) for layer in self.layers for w in layer.weights)
