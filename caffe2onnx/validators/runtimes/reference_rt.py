"""onnx's ReferenceEvaluator (pure NumPy) in its own isolated worker; see reference_worker for LRN."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Iterable, Mapping

import numpy as np
import onnx

from . import RunResult, check_provider, run_worker_script
from ..onnx_runner import with_aliases

NAME = "reference"
# onnx issue 7805: its LRN sums the channel window only for channels c < batch size (the
# loop runs over axis 0). Fixed upstream by onnx PR 8331; no release with the fix could be
# found, so every onnx up to 1.23.2 (the newest known here) gets the spec-exact LRN override.
LAST_AFFECTED = (1, 23, 2)


def lrn_affected(version: str) -> bool:
    """True for onnx versions whose ReferenceEvaluator computes LRN wrongly."""
    m = re.match(r"(\d+)\.(\d+)(?:\.(\d+))?", version)
    return m is None or tuple(int(g or 0) for g in m.groups()) <= LAST_AFFECTED


def run(model: onnx.ModelProto, feeds: Mapping[str, np.ndarray], *, provider: str = "cpu",
        provider_options: Mapping[str, dict] | None = None, timeout: float | None = None,
        untrusted_dirs: Iterable[str] = (), external_data_dir: str | None = None) -> RunResult:
    check_provider(NAME, provider)
    fix = lrn_affected(onnx.__version__) and any(n.op_type == "LRN" for n in model.graph.node)
    values, meta = run_worker_script(Path(__file__).with_name("reference_worker.py"), "the onnx reference evaluator",
                                     model, feeds, {"lrn_override": fix, "data_dir": external_data_dir}, timeout,
                                     untrusted_dirs, external_data_dir, place_data=False)
    version = meta["version"] + (" (LRN per the ONNX spec: onnx issue 7805)" if fix else "")
    return RunResult(with_aliases(model, feeds, values), "numpy", NAME, version)
