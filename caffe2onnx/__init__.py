"""caffe2onnx: Caffe models to ONNX models that compute the same numbers."""
from .errors import (Caffe2OnnxError, CaffeParseError, ConversionError, InputFileError, ModelCheckError,
                     NetStructureError, OutputPathError, ResourceLimitError, ShapeError, UnsupportedLayerError,
                     UsageError, WeightMismatchError)
from .parser import TEST, TRAIN, load

__version__ = "0.1.0"


def convert(prototxt=None, caffemodel=None, **options):
    """Converts a Caffe net to a checked ``onnx.ModelProto``; see ``caffe2onnx.converter.convert``."""
    from .converter import convert as _convert  # imports onnx only when converting
    return _convert(prototxt, caffemodel, **options)

__all__ = ["load", "convert", "TEST", "TRAIN", "Caffe2OnnxError", "CaffeParseError", "ConversionError",
           "NetStructureError", "ShapeError", "UnsupportedLayerError", "WeightMismatchError", "InputFileError",
           "ModelCheckError", "OutputPathError", "ResourceLimitError", "UsageError"]
