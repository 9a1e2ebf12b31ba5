"""One exception hierarchy for everything caffe2onnx refuses."""
from __future__ import annotations


class Caffe2OnnxError(Exception):
    """Base class: every error caffe2onnx raises on purpose derives from it."""


class CaffeParseError(Caffe2OnnxError):
    """The prototxt or caffemodel cannot be read (syntax, truncation, corruption)."""


class NetStructureError(Caffe2OnnxError):
    """The net is readable but not a valid Caffe net (dangling bottoms, duplicate tops...)."""


class ShapeError(Caffe2OnnxError):
    """A shape is missing, invalid, absurdly large, or rejected by Caffe's own rules."""


class UnsupportedLayerError(Caffe2OnnxError):
    """One or more layers (or layer parameters) cannot be converted.

    ``problems`` lists every offending (layer name, layer type, detail) at once.
    """

    def __init__(self, problems: list[tuple[str, str, str]]):
        self.problems = list(problems)
        lines = [f"  layer '{n}' (type {t}): {d}" for n, t, d in self.problems]
        super().__init__(f"{len(self.problems)} unsupported layer(s) or parameter(s):\n" + "\n".join(lines))


class WeightMismatchError(Caffe2OnnxError):
    """Weights are missing for a layer, or their count or shapes do not fit it."""


class ConversionError(Caffe2OnnxError):
    """The ONNX model could not be built or failed its own checks."""
