"""caffe2onnx: Caffe models to ONNX models that compute the same numbers."""
from .errors import (Caffe2OnnxError, CaffeParseError, ConversionError, InputFileError, ModelCheckError,
                     NetStructureError, OutputPathError, ResourceLimitError, ShapeError, UnsupportedLayerError,
                     UsageError, WeightMismatchError)

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


def register_layer(type, *, spec=None, mapping=None, reference=None, check=None, source=None):
    """Registers a layer type's spec, ONNX mapping and NumPy reference; see ``caffe2onnx.plugins``."""
    from .plugins import register_layer as _register  # imports the registries only when used
    return _register(type, spec=spec, mapping=mapping, reference=reference, check=check, source=source)


__all__ = ["load", "convert", "register_layer", "TEST", "TRAIN", "Caffe2OnnxError", "CaffeParseError", "ConversionError",
           "NetStructureError", "ShapeError", "UnsupportedLayerError", "WeightMismatchError", "InputFileError",
           "ModelCheckError", "OutputPathError", "ResourceLimitError", "UsageError"]
