"""onnxruntime: the isolated worker of ``onnx_runner`` with the chosen execution provider."""
from __future__ import annotations

from typing import Iterable, Mapping

import numpy as np
import onnx

from . import RunResult

NAME = "onnxruntime"


def run(model: onnx.ModelProto, feeds: Mapping[str, np.ndarray], *, provider: str = "cpu",
        provider_options: Mapping[str, dict] | None = None, timeout: float | None = None,
        untrusted_dirs: Iterable[str] = (), external_data_dir: str | None = None) -> RunResult:
    from ...model_check import quiet_onnxruntime
    from ..onnx_runner import run_onnx_isolated
    ort = quiet_onnxruntime()
    values, ran = run_onnx_isolated(model, feeds, provider, provider_options=provider_options, timeout=timeout,
                                    untrusted_dirs=untrusted_dirs, external_data_dir=external_data_dir)
    return RunResult(values, ran, NAME, ort.__version__)
