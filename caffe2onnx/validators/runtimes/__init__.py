"""The runtimes a parity check can run the ONNX model in, behind one small interface.

Each runtime module offers ``run(model, feeds, *, provider, provider_options, timeout,
untrusted_dirs, external_data_dir) -> RunResult``: every graph output of ``model`` (the
caller exposes the intermediate tensors with ``onnx_runner.expose_tensors`` first),
computed in an isolated worker process (``python -I``, importing nothing from caffe2onnx)
that is killed after ``timeout`` seconds. ``get_runtime(name)`` picks the module.

* ``onnxruntime``: ``onnx_runner.run_onnx_isolated`` (``--provider`` chooses its provider).
* ``openvino``: OpenVINO's CPU plugin, reading the ONNX file itself, in f32 (its default
  on CPUs with AMX/AVX512-bf16 is bf16, which is off by ~1e-2).
* ``reference``: onnx's pure-NumPy ``onnx.reference.ReferenceEvaluator`` (slow: minutes
  on ImageNet-size nets), with a spec-exact LRN where onnx's own is wrong.
"""
from __future__ import annotations

import importlib
import json
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping

import numpy as np
import onnx
from onnx import TensorProto

from ...errors import Caffe2OnnxError

RUNTIMES = ("onnxruntime", "openvino", "reference")
_MODULES = {"onnxruntime": "onnxruntime_rt", "openvino": "openvino_rt", "reference": "reference_rt"}


class RuntimeUnavailable(Caffe2OnnxError):
    """The requested runtime is not installed here, or cannot take the requested option."""


class RuntimeRunError(Caffe2OnnxError):
    """The runtime could not run the model (in its worker process)."""


@dataclass(frozen=True)
class RunResult:
    """What one runtime computed: {tensor: value}, where it ran, and which runtime it was."""

    values: dict[str, np.ndarray]
    device: str  # onnxruntime: the execution provider that ran; openvino: its device; reference: numpy
    runtime: str
    version: str


def get_runtime(name: str):
    """The module running ``name``; a RuntimeUnavailable for unknown names."""
    if name not in RUNTIMES:
        raise RuntimeUnavailable(f"unknown runtime {name!r}; choose {', '.join(RUNTIMES)}")
    return importlib.import_module(f".{_MODULES[name]}", __name__)


def preflight(runtime: str, provider: str) -> None:
    """Refuses, before any reference runs, an unknown or uninstalled runtime or a provider it lacks."""
    get_runtime(runtime)
    check_provider(runtime, provider)
    if runtime == "openvino":
        require("openvino", runtime, "openvino")


def check_provider(runtime: str, provider: str) -> None:
    """``--provider`` chooses onnxruntime's execution provider; the other runtimes run on CPU only."""
    if runtime != "onnxruntime" and provider != "cpu":
        raise RuntimeUnavailable(f"--provider {provider} applies to --runtime onnxruntime only; "
                                 f"--runtime {runtime} runs on the CPU (leave --provider at cpu)")


def require(module: str, runtime: str, extra: str) -> None:
    """A one-line error naming the install command when ``module`` is not importable."""
    if importlib.util.find_spec(module) is None:
        raise RuntimeUnavailable(f"--runtime {runtime} needs the '{module}' package, which is not installed "
                                 f"here: pip install 'caffe2onnx[{extra}]'")


def _place(src: Path, dst: Path) -> None:
    """A hard link to ``src`` at ``dst``, or a copy across file systems: OpenVINO and onnx both
    refuse external data behind a symbolic link that leaves the model's folder."""
    if dst.exists():
        return
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(src, dst)
    except OSError:
        shutil.copyfile(src, dst)


def _write_model(model: onnx.ModelProto, folder: str, external_data_dir: str | None, place: bool) -> Path:
    """``folder``/model.onnx, with the files of its ONNX external data beside it."""
    for t in model.graph.initializer:
        if t.data_location != TensorProto.EXTERNAL:
            continue
        for e in t.external_data:
            if e.key != "location":
                continue
            if external_data_dir is None or Path(e.value).is_absolute() or ".." in Path(e.value).parts:
                raise RuntimeRunError(f"external data location {e.value!r} is not inside the model's folder")
            if place:
                _place(Path(external_data_dir, e.value).resolve(), Path(folder, e.value))
    path = Path(folder, "model.onnx")
    path.write_bytes(model.SerializeToString())
    return path


def run_worker_script(script: Path, what: str, model: onnx.ModelProto, feeds: Mapping[str, np.ndarray],
                      options: Mapping, timeout: float | None, untrusted_dirs: Iterable[str] = (),
                      external_data_dir: str | None = None, place_data: bool = True
                      ) -> tuple[dict[str, np.ndarray], dict]:
    """Runs ``script MODEL INPUTS OUT META OPTIONS_JSON`` isolated; returns (outputs, META's dict).

    ``place_data``: put the external data files beside the temporary model (else the worker
    reads them from ``external_data_dir`` itself)."""
    from ..isolation import DEFAULT_TIMEOUT, run_worker, worker_command
    with tempfile.TemporaryDirectory(prefix="caffe2onnx-rt-") as tmp:
        model_path = _write_model(model, tmp, external_data_dir, place_data)
        paths = [model_path] + [Path(tmp, n) for n in ("inputs.npz", "out.npz", "meta.json")]
        np.savez(paths[1], **{k: np.ascontiguousarray(v, np.float32) for k, v in feeds.items()})
        cmd = worker_command(sys.executable, script, [str(p) for p in paths] + [json.dumps(dict(options))],
                             list(untrusted_dirs))
        r = run_worker(cmd, dict(os.environ), DEFAULT_TIMEOUT if timeout is None else timeout, what, cwd=tmp)
        if r.returncode != 0:
            lines = [line for line in (r.stderr or "").splitlines() if line.strip()]
            why = lines[-1][:300] if lines else f"exit status {r.returncode}"
            raise RuntimeRunError(f"{what} cannot run the model: {why}")
        meta = json.loads(paths[3].read_text())
        with np.load(paths[2], allow_pickle=False) as data:
            values = {k: data[k] for k in data.files}
    return values, meta
