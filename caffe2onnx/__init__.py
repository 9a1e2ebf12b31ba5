"""caffe2onnx: Caffe models to ONNX models that compute the same numbers."""
from .errors import (Caffe2OnnxError, CaffeParseError, ConversionError, NetStructureError, ShapeError,
                     UnsupportedLayerError, WeightMismatchError)

__version__ = "0.1.0"


def __getattr__(name: str):
    """load, TEST and TRAIN import the parser (numpy, protobuf) on first use, so that
    `caffe2onnx --help` and other commands that need neither start in a few milliseconds."""
    if name in ("load", "TEST", "TRAIN"):
        from . import parser
        return getattr(parser, name)
    raise AttributeError(f"module 'caffe2onnx' has no attribute {name!r}")


def convert(prototxt=None, caffemodel=None, **options):
    """Converts a Caffe net to a checked ``onnx.ModelProto``; see ``caffe2onnx.converter.convert``."""
    from .converter import convert as _convert  # imports onnx only when converting
    return _convert(prototxt, caffemodel, **options)

__all__ = ["load", "convert", "TEST", "TRAIN", "Caffe2OnnxError", "CaffeParseError", "ConversionError",
           "NetStructureError", "ShapeError", "UnsupportedLayerError", "WeightMismatchError"]
