"""OpenVINO (CPU plugin, f32), reading the ONNX model directly, in its own isolated worker."""
from __future__ import annotations

from pathlib import Path
from typing import Iterable, Mapping

import numpy as np
import onnx

from . import RunResult, check_provider, require, run_worker_script
from ..onnx_runner import with_aliases

NAME = "openvino"


def run(model: onnx.ModelProto, feeds: Mapping[str, np.ndarray], *, provider: str = "cpu",
        provider_options: Mapping[str, dict] | None = None, timeout: float | None = None,
        untrusted_dirs: Iterable[str] = (), external_data_dir: str | None = None) -> RunResult:
    check_provider(NAME, provider)
    require("openvino", NAME, "openvino")
    values, meta = run_worker_script(Path(__file__).with_name("openvino_worker.py"), "OpenVINO", model, feeds,
                                     {"device": "CPU"}, timeout, untrusted_dirs, external_data_dir)
    return RunResult(with_aliases(model, feeds, values), meta["device"], NAME, meta["version"])
