"""Parity on onnxruntime's CUDA execution provider (TF32 off, CUDA tolerances); skipped without it."""
from __future__ import annotations

import pytest

from caffe2onnx.cli import main
from caffe2onnx.validators.caffe_reference import caffe_available
from caffe2onnx.validators.check import validate
from caffe2onnx.validators.report import format_table

from test_validate import broken_model, small_model


def _cuda_providers() -> list[str]:
    import onnxruntime as ort
    return ort.get_available_providers()


pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif("CUDAExecutionProvider" not in _cuda_providers(),
                       reason="onnxruntime's CUDAExecutionProvider is not available "
                              "(install onnxruntime-gpu on a machine with CUDA)"),
]
REFERENCE = "caffe" if caffe_available() else "numpy"


def test_parity_on_cuda(tmp_path):
    r = validate(*small_model(tmp_path), reference=REFERENCE, provider="cuda")
    assert r.provider == "CUDAExecutionProvider", "an explicit cuda choice must not fall back to CPU"
    assert (r.atol, r.rtol) == (1e-3, 1e-3)
    assert r.passed, format_table(r, layers=True)
    # CUDA with TF32 off is far tighter than its tolerance on this net
    assert max(b.max_rel for b in r.blobs) < 1e-4, format_table(r, layers=True)


def test_broken_model_fails_on_cuda(tmp_path):
    r = validate(*broken_model(tmp_path, "eltwise_coeffs"), reference=REFERENCE, provider="cuda")
    assert r.provider == "CUDAExecutionProvider"
    assert not r.passed and r.first_divergence["layer"] == "sum"


def test_cli_reports_the_cuda_provider(tmp_path, capsys):
    assert main(["validate", *map(str, small_model(tmp_path)), "--reference", REFERENCE,
                 "--provider", "cuda", "--layers"]) == 0
    out = capsys.readouterr().out
    assert "provider CUDAExecutionProvider" in out and "atol 0.001, rtol 0.001" in out
