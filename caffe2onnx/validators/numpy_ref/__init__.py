"""A NumPy reference of Caffe's forward pass, for parity checks where Caffe is not installed.

Written from Caffe's CPU layer code, independent of ONNX: ``run_numpy(net,
inputs)`` runs a loaded ``Net`` layer by layer and returns every tensor.
Each Caffe type has one forward function on the ``FORWARDS`` registry.
"""
from __future__ import annotations

from typing import Mapping

import numpy as np

from ...errors import Caffe2OnnxError, UnsupportedLayerError, WeightMismatchError
from ...ir import Net
from ...layers.detection import DYNAMIC_AXES
from . import activation, common, normalization, vision  # noqa: F401  (registers the forwards)
from . import bvlc, recurrent  # noqa: F401
from . import fork  # noqa: F401
from . import detection  # noqa: F401
from . import extra, extra_activation, resize  # noqa: F401  (reference Caffe extra layers)
from .registry import FORWARDS, Forward, ForwardRegistry

__all__ = ["run_numpy", "FORWARDS", "Forward", "ForwardRegistry"]


def run_numpy(net: Net, inputs: Mapping[str, np.ndarray],
              registry: ForwardRegistry = FORWARDS) -> dict[str, np.ndarray]:
    """Every tensor of the net (inputs included) by tensor name, as float32 arrays."""
    missing = [n for n in net.inputs if n not in inputs]
    if missing:
        raise Caffe2OnnxError(f"no value for net input(s) {missing}; the net's inputs are {list(net.inputs)}")
    unknown = [(l.name, l.type, "no NumPy forward for this layer type") for l in net.layers
               if l.type not in registry]
    if unknown:
        raise UnsupportedLayerError(unknown)
    values: dict[str, np.ndarray] = {}
    for name in net.inputs:
        value = np.asarray(inputs[name], np.float32)
        if value.shape != net.shape(name):
            raise Caffe2OnnxError(f"input '{name}' has shape {value.shape}, the net expects {net.shape(name)}")
        values[name] = value
    for layer in net.layers:
        if len(layer.weights) != len(layer.weight_shapes):
            raise WeightMismatchError(f"layer '{layer.name}' (type {layer.type}) has no weights bound; "
                                      "load the net with a caffemodel or random_weights")
        tops = registry.get(layer.type).fn(layer, [values[t] for t in layer.inputs])
        if len(tops) != len(layer.outputs):
            raise Caffe2OnnxError(f"NumPy forward of layer '{layer.name}' (type {layer.type}) gave "
                                  f"{len(tops)} tops, the layer has {len(layer.outputs)}")
        for name, top, shape in zip(layer.outputs, tops, layer.output_shapes):
            top = np.asarray(top, np.float32)
            axis = DYNAMIC_AXES.get(layer.type)  # a data-dependent row count (DetectionOutput)
            if top.shape != tuple(shape) and (axis is None or top.shape[:axis] + top.shape[axis + 1:]
                                              != shape[:axis] + shape[axis + 1:]):
                raise Caffe2OnnxError(f"NumPy forward of layer '{layer.name}' (type {layer.type}) gave "
                                      f"top '{name}' shape {top.shape}, Caffe's is {tuple(shape)}")
            values[name] = top
    return values
