"""Stop an SSD net before its DetectionOutput: for runtimes that bring their own NMS
(TensorRT's plugins, OpenVINO's DetectionOutput), the locations, confidences and priors the
layer reads become the net's outputs, under their Caffe blob names."""
from __future__ import annotations

import dataclasses
from types import MappingProxyType

from ..errors import ConversionError
from ..ir import Net


def without_detection_output(net: Net) -> Net:
    """The net without its DetectionOutput layers; their bottoms become net outputs (in order)."""
    cut = [l for l in net.layers if l.type == "DetectionOutput"]
    if not cut:
        raise ConversionError(f"net '{net.name}' has no DetectionOutput layer to stop before")
    dropped = {t for l in cut for t in l.outputs}
    readers = [l for l in net.layers if l.type != "DetectionOutput" and dropped & set(l.inputs)]
    if readers:
        l = readers[0]
        raise ConversionError(f"layer '{l.name}' (type {l.type}) reads the detections of "
                              f"'{cut[0].name}': the net cannot stop before DetectionOutput")
    outputs = [o for o in net.outputs if o not in dropped]
    for layer in cut:
        outputs += [t for t in layer.inputs if t not in outputs]
    tensors = {k: v for k, v in net.tensors.items() if k not in dropped}
    return dataclasses.replace(net, outputs=tuple(outputs), layers=tuple(l for l in net.layers if l not in cut),
                               tensors=MappingProxyType(tensors))
