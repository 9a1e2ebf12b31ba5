"""caffe2onnx: Caffe models to ONNX models that compute the same numbers."""
from .errors import (Caffe2OnnxError, CaffeParseError, ConversionError, NetStructureError, ShapeError,
                     UnsupportedLayerError, WeightMismatchError)
from .parser import TEST, TRAIN, load

__version__ = "0.1.0"

__all__ = ["load", "TEST", "TRAIN", "Caffe2OnnxError", "CaffeParseError", "ConversionError",
           "NetStructureError", "ShapeError", "UnsupportedLayerError", "WeightMismatchError"]
