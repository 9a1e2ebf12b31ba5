"""The ONNX side of a parity check: onnxruntime with an explicit execution provider."""
from __future__ import annotations

from typing import Iterable, Mapping

import numpy as np
import onnx
from onnx import TensorProto, helper

from ..errors import Caffe2OnnxError
from .ort_install import warn_if_conflict

PROVIDERS = {
    "cpu": "CPUExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "tensorrt": "TensorrtExecutionProvider",
}


class ProviderUnavailable(Caffe2OnnxError):
    """The requested onnxruntime execution provider is not available here."""


def resolve_provider(choice: str) -> list[str]:
    """Provider list for onnxruntime; ``auto`` prefers CUDA, an explicit choice never falls back."""
    import onnxruntime as ort
    available = ort.get_available_providers()
    clash = warn_if_conflict()  # onnxruntime and onnxruntime-gpu installed over each other
    if choice == "auto":
        for p in ("CUDAExecutionProvider", "CPUExecutionProvider"):
            if p in available:
                return [p] if p == "CPUExecutionProvider" else [p, "CPUExecutionProvider"]
    if choice not in PROVIDERS:
        raise ProviderUnavailable(f"unknown provider {choice!r}; choose auto, {', '.join(PROVIDERS)}")
    wanted = PROVIDERS[choice]
    if wanted not in available:
        raise ProviderUnavailable(f"{wanted} requested but not available: {clash}" if clash else
            f"{wanted} requested but this onnxruntime ({ort.__version__}) offers only {available}"
            + ("; install onnxruntime-gpu in place of onnxruntime, and CUDA (README: GPU)" if choice != "cpu" else ""))
    return [wanted] if choice == "cpu" else [wanted, "CPUExecutionProvider"]


def expose_tensors(model: onnx.ModelProto, names: Iterable[str], shapes: Mapping[str, tuple]) -> onnx.ModelProto:
    """A copy of ``model`` with the named intermediate tensors added as graph outputs."""
    out = onnx.ModelProto()
    out.CopyFrom(model)
    present = {o.name for o in out.graph.output} | {i.name for i in out.graph.input}
    produced = {o for n in out.graph.node for o in n.output}
    for name in names:
        if name not in present and name in produced:
            out.graph.output.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, list(shapes[name])))
    return out


def run_onnx(model: onnx.ModelProto, inputs: Mapping[str, np.ndarray], provider: str = "cpu",
             threads: int | None = None, provider_options: Mapping[str, dict] | None = None,
             ) -> tuple[dict[str, np.ndarray], str]:
    """Runs every graph output; returns ({name: value}, the provider that actually ran).

    ``provider_options`` maps a provider name to its options, e.g.
    ``{"CUDAExecutionProvider": {"use_tf32": "0"}}``.
    """
    import onnxruntime as ort
    providers = resolve_provider(provider)
    opts = ort.SessionOptions()
    if threads:
        opts.intra_op_num_threads = threads
    options = [dict((provider_options or {}).get(p, {})) for p in providers]
    sess = ort.InferenceSession(model.SerializeToString(), opts, providers=providers,
                                provider_options=options)
    ran = sess.get_providers()[0]
    if provider != "auto" and ran != PROVIDERS[provider]:
        raise ProviderUnavailable(f"onnxruntime fell back to {ran} instead of {PROVIDERS[provider]}")
    names = [o.name for o in sess.get_outputs()]
    values = sess.run(names, {k: np.ascontiguousarray(v, np.float32) for k, v in inputs.items()})
    return dict(zip(names, values)), ran


class OnnxRunError(Caffe2OnnxError):
    """onnxruntime could not run the model (in its worker process)."""


def run_onnx_isolated(model: onnx.ModelProto, inputs: Mapping[str, np.ndarray], provider: str = "cpu",
                      provider_options: Mapping[str, dict] | None = None, timeout: float | None = None,
                      untrusted_dirs: Iterable[str] = ()) -> tuple[dict[str, np.ndarray], str]:
    """``run_onnx`` in an isolated worker process that is killed after ``timeout`` seconds."""
    import json
    import os
    import sys
    import tempfile
    from pathlib import Path

    from .isolation import DEFAULT_TIMEOUT, run_worker, worker_command
    providers = resolve_provider(provider)
    options = [dict((provider_options or {}).get(p, {})) for p in providers]
    with tempfile.TemporaryDirectory(prefix="caffe2onnx-ort-") as tmp:
        paths = [Path(tmp, n) for n in ("model.onnx", "inputs.npz", "out.npz", "meta.json")]
        paths[0].write_bytes(model.SerializeToString())
        np.savez(paths[1], **{k: np.ascontiguousarray(v, np.float32) for k, v in inputs.items()})
        cmd = worker_command(sys.executable, Path(__file__).with_name("ort_worker.py"),
                             [str(p) for p in paths] + [json.dumps(providers), json.dumps(options)],
                             list(untrusted_dirs))
        env = dict(os.environ)
        r = run_worker(cmd, env, DEFAULT_TIMEOUT if timeout is None else timeout, "onnxruntime", cwd=tmp)
        if r.returncode != 0:
            lines = [l for l in (r.stderr or "").splitlines() if l.strip()]
            why = lines[-1][:300] if lines else f"exit status {r.returncode}"
            raise OnnxRunError(f"onnxruntime cannot run the model: {why}")
        ran = json.loads(paths[3].read_text())["provider"]
        if provider != "auto" and ran != PROVIDERS[provider]:
            raise ProviderUnavailable(f"onnxruntime fell back to {ran} instead of {PROVIDERS[provider]}")
        with np.load(paths[2], allow_pickle=False) as data:
            return {k: data[k] for k in data.files}, ran
