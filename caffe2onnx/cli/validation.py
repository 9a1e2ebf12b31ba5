"""``convert --validate``: the parity check of a file just written, with validate's exit codes."""
from __future__ import annotations

import sys

from ..errors import EXIT_ERROR, EXIT_MISMATCH, EXIT_OK, Caffe2OnnxError, one_line
from .options import emit


def validate_converted(net, onnx_path: str, reference: str, quiet: bool, timeout: float | None = None,
                       runtime: str = "onnxruntime") -> int:
    """Checks ``onnx_path`` against ``reference`` run on ``net`` (the Net it was converted from)."""
    from ..validators.check import validate
    from ..validators.report import format_table
    try:
        result = validate(None, None, onnx_path, reference=reference, provider="cpu", net=net, timeout=timeout,
                          runtime=runtime)
    except Caffe2OnnxError as e:
        emit(f"caffe2onnx: validation could not run: {one_line(str(e))}", file=sys.stderr)
        return EXIT_ERROR
    if not result.passed:
        emit(format_table(result), file=sys.stderr)
        emit(f"caffe2onnx: {onnx_path} was written but does NOT match the {result.reference} reference",
             file=sys.stderr)
        return EXIT_MISMATCH
    if not quiet:
        worst = max(result.blobs, key=lambda b: b.max_rel)
        emit(f"  validated      {len(result.blobs)} tensors match the {result.reference} reference on "
             f"{result.provider} (worst max rel diff {worst.max_rel:.1e}, rtol {result.rtol:g})")
    return EXIT_OK
