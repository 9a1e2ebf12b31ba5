"""The ONNX side of a parity check: onnxruntime with an explicit execution provider.

The other runtimes (OpenVINO, onnx's reference evaluator) are in ``validators/runtimes``,
which runs onnxruntime through ``run_onnx_isolated`` here."""
from __future__ import annotations

import contextlib
import tempfile
from pathlib import Path
from typing import Iterable, Mapping

import numpy as np
import onnx
from onnx import TensorProto, helper

from ..errors import Caffe2OnnxError
from ..model_check import quiet_onnxruntime
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
    ort = quiet_onnxruntime()
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
    types = {v.name: v.type.tensor_type.elem_type for v in out.graph.value_info}  # float16 in --fp16 models
    for name in names:
        if name not in present and name in produced:
            out.graph.output.append(helper.make_tensor_value_info(name, types.get(name, TensorProto.FLOAT),
                                                                  list(shapes[name])))
    return out


@contextlib.contextmanager
def _model_source(model: onnx.ModelProto, external_data_dir: str | None):
    """The model's bytes; with external data on onnxruntime < 1.21 (which lacks the session option
    naming the data folder), a temporary folder holding the small model next to links to its data."""
    locations = {e.value for t in model.graph.initializer if t.data_location == TensorProto.EXTERNAL
                 for e in t.external_data if e.key == "location"}
    if external_data_dir is None or not locations:
        yield model.SerializeToString()
        return
    with tempfile.TemporaryDirectory(prefix="caffe2onnx-") as tmp:
        for loc in locations:
            parts = Path(loc).parts
            if Path(loc).is_absolute() or ".." in parts:
                raise Caffe2OnnxError(f"external data location {loc!r} leaves the model's folder")
            link = Path(tmp, loc)
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to(Path(external_data_dir, loc).resolve())
        path = Path(tmp, "model.onnx")
        path.write_bytes(model.SerializeToString())
        yield str(path)


def run_onnx(model: onnx.ModelProto, inputs: Mapping[str, np.ndarray], provider: str = "cpu",
             threads: int | None = None, provider_options: Mapping[str, dict] | None = None,
             external_data_dir: str | None = None) -> tuple[dict[str, np.ndarray], str]:
    """Runs every graph output; returns ({name: value}, the provider that actually ran).

    ``provider_options`` maps a provider name to its options, e.g.
    ``{"CUDAExecutionProvider": {"use_tf32": "0"}}``. ``external_data_dir``: where the files of a
    model with ONNX external data lie (onnxruntime reads them itself; the model stays small).
    """
    ort = quiet_onnxruntime()
    providers = resolve_provider(provider)
    opts = ort.SessionOptions()
    if threads:
        opts.intra_op_num_threads = threads
    options = [dict((provider_options or {}).get(p, {})) for p in providers]
    folder_option = tuple(int(v) for v in ort.__version__.split(".")[:2]) >= (1, 21)
    if external_data_dir is not None and folder_option:
        opts.add_session_config_entry("session.model_external_initializers_file_folder_path", external_data_dir)
    with _model_source(model, None if folder_option else external_data_dir) as source:
        sess = ort.InferenceSession(source, opts, providers=providers, provider_options=options)
    ran = sess.get_providers()[0]
    if provider != "auto" and ran != PROVIDERS[provider]:
        raise ProviderUnavailable(f"onnxruntime fell back to {ran} instead of {PROVIDERS[provider]}")
    names = [o.name for o in sess.get_outputs()]
    feeds = {k: _feed(v) for k, v in inputs.items()}
    return with_aliases(model, feeds, dict(zip(names, sess.run(names, feeds)))), ran


def with_aliases(model: onnx.ModelProto, feeds, values) -> dict[str, np.ndarray]:
    """The outputs, plus each tensor the converter's rewrites removed (an Identity's) as the one it equals."""
    from ..rewrites import resolve_aliases
    return {k: v for k, v in resolve_aliases(model, {**feeds, **values}).items() if k not in feeds or k in values}


def _feed(v) -> np.ndarray:
    """float32, except the raw uint8/float16 inputs of a model with baked preprocessing or --fp16-io."""
    v = np.asarray(v)
    return np.ascontiguousarray(v, v.dtype if v.dtype in (np.uint8, np.float16) else np.float32)


class OnnxRunError(Caffe2OnnxError):
    """onnxruntime could not run the model (in its worker process)."""


def run_onnx_isolated(model: onnx.ModelProto, inputs: Mapping[str, np.ndarray], provider: str = "cpu",
                      provider_options: Mapping[str, dict] | None = None, timeout: float | None = None,
                      untrusted_dirs: Iterable[str] = (), external_data_dir: str | None = None
                      ) -> tuple[dict[str, np.ndarray], str]:
    """``run_onnx`` in an isolated worker process that is killed after ``timeout`` seconds.

    For a model with ONNX external data, the worker's onnxruntime reads the data files from
    ``external_data_dir`` itself."""
    import json
    import os
    import sys
    import tempfile
    from pathlib import Path

    from .isolation import DEFAULT_TIMEOUT, run_worker, worker_command
    providers = resolve_provider(provider)
    options = [dict((provider_options or {}).get(p, {})) for p in providers]
    feeds = {k: _feed(v) for k, v in inputs.items()}
    with tempfile.TemporaryDirectory(prefix="caffe2onnx-ort-") as tmp:
        paths = [Path(tmp, n) for n in ("model.onnx", "inputs.npz", "out.npz", "meta.json")]
        paths[0].write_bytes(model.SerializeToString())
        np.savez(paths[1], **feeds)
        cmd = worker_command(sys.executable, Path(__file__).with_name("ort_worker.py"),
                             [str(p) for p in paths] + [json.dumps(providers), json.dumps(options)]
                             + ([str(Path(external_data_dir).resolve())] if external_data_dir else []),
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
            values = {k: data[k] for k in data.files}
    return with_aliases(model, feeds, values), ran
