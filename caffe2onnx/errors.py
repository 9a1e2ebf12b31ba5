"""One exception hierarchy for everything caffe2onnx refuses, and the exit codes it maps to."""
from __future__ import annotations

from typing import Iterable

EXIT_OK, EXIT_MISMATCH, EXIT_ERROR, EXIT_INTERRUPTED = 0, 1, 2, 130
MAX_MESSAGE = 400  # characters of one error line; the rest is summarised


class Caffe2OnnxError(Exception):
    """Base class: every error caffe2onnx raises on purpose derives from it.

    ``exit_code`` is what the command line returns for it: 2 for usage, input and
    environment errors; subclasses meaning "the model is wrong" set 1.
    """

    exit_code = EXIT_ERROR


class UsageError(Caffe2OnnxError):
    """An option or argument has a value that cannot be used (e.g. a negative seed)."""


class CaffeParseError(Caffe2OnnxError):
    """The prototxt or caffemodel cannot be read (syntax, truncation, corruption)."""


class InputFileError(CaffeParseError):
    """An input file is not a readable regular file, or is larger than its stated bound."""


class OutputPathError(Caffe2OnnxError):
    """The output path cannot be written safely (missing directory, not a regular file, an input)."""


class NetStructureError(Caffe2OnnxError):
    """The net is readable but not a valid Caffe net (dangling bottoms, duplicate tops...)."""


class ShapeError(Caffe2OnnxError):
    """A shape is missing, invalid, absurdly large, or rejected by Caffe's own rules."""


class ResourceLimitError(ShapeError):
    """A declared shape or count would need more memory than the stated bound."""


def summarize(items: Iterable[str], first: int = 3, sep: str = "; ") -> str:
    """The first few items and a count of the rest, on one line."""
    items = list(items)
    text = sep.join(items[:first])
    return text + (f"{sep}and {len(items) - first} more" if len(items) > first else "")


def one_line(message: str, limit: int = MAX_MESSAGE) -> str:
    """``message`` on one line of at most about ``limit`` characters."""
    text = " | ".join(part.strip() for part in str(message).splitlines() if part.strip())
    if len(text) > limit:
        text = text[:limit] + f"... ({len(text) - limit} more characters)"
    return text


class UnsupportedLayerError(Caffe2OnnxError):
    """One or more layers (or layer parameters) cannot be converted.

    ``problems`` lists every offending (layer name, layer type, detail) at once;
    the message names the first three and counts the rest.
    """

    def __init__(self, problems: list[tuple[str, str, str]]):
        self.problems = list(problems)
        width = 200 if len(self.problems) == 1 else 100  # room for the count of the rest on one line
        parts = [f"layer '{_short(n)}' (type {_short(t)}): {_short(d, width)}" for n, t, d in self.problems]
        super().__init__(f"{len(self.problems)} unsupported layer(s) or parameter(s): " + summarize(parts))


class WeightMismatchError(Caffe2OnnxError):
    """Weights are missing for a layer, or their count or shapes do not fit it."""


class ConversionError(Caffe2OnnxError):
    """The ONNX model could not be built or failed its own checks."""


class ModelCheckError(ConversionError):
    """The built ONNX model fails onnx's checker, shape inference or an onnxruntime load."""

    exit_code = EXIT_MISMATCH


def _short(text: str, limit: int = 80) -> str:
    text = str(text)
    return text if len(text) <= limit else text[:limit] + f"...(+{len(text) - limit})"
