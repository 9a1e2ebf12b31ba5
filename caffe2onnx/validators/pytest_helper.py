"""A one-line parity assertion for users' own test suites.

    from caffe2onnx.validators.pytest_helper import assert_onnx_matches_caffe

    def test_my_model_converts_exactly():
        assert_onnx_matches_caffe("deploy.prototxt", "weights.caffemodel", "model.onnx")

It raises AssertionError with the full per-layer report (first diverging layer,
its type and parameters) when any blob is out of tolerance; a check that cannot
run at all raises the underlying ``Caffe2OnnxError``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import onnx

from .check import ValidationResult, validate
from .report import format_table


def assert_onnx_matches_caffe(prototxt: str | Path, caffemodel: str | Path | None,
                              onnx_model: str | Path | onnx.ModelProto, **opts: Any) -> ValidationResult:
    """Validates like ``caffe2onnx validate``; ``opts`` are ``validate``'s keywords
    (reference, runtime, provider, atol, rtol, inputs, input_specs, seed, preprocess, input_shapes).
    Returns the result when every blob matches."""
    result = validate(prototxt, caffemodel, onnx_model, **opts)
    if not result.passed:
        raise AssertionError("ONNX model does not match the reference:\n" + format_table(result, layers=True))
    return result
