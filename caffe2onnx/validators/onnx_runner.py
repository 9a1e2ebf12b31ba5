"""The ONNX side of a parity check: onnxruntime with an explicit execution provider."""
from __future__ import annotations

import contextlib
import tempfile
from pathlib import Path
from typing import Iterable, Mapping

import numpy as np
import onnx
from onnx import TensorProto, helper

from ..errors import Caffe2OnnxError

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
    if choice == "auto":
        for p in ("CUDAExecutionProvider", "CPUExecutionProvider"):
            if p in available:
                return [p] if p == "CPUExecutionProvider" else [p, "CPUExecutionProvider"]
    if choice not in PROVIDERS:
        raise ProviderUnavailable(f"unknown provider {choice!r}; choose auto, {', '.join(PROVIDERS)}")
    wanted = PROVIDERS[choice]
    if wanted not in available:
        raise ProviderUnavailable(
            f"{wanted} requested but this onnxruntime ({ort.__version__}) offers only {available}"
            + ("; install onnxruntime-gpu (pip install 'caffe2onnx[gpu]') and CUDA" if choice != "cpu" else ""))
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
    import onnxruntime as ort
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
    feeds = {k: np.ascontiguousarray(v, np.float32) for k, v in inputs.items()}
    values = dict(zip(names, sess.run(names, feeds)))
    # A tensor the converter's rewrites removed (an Identity's) is reported as the one it equals.
    from ..rewrites import resolve_aliases
    return {k: v for k, v in resolve_aliases(model, {**feeds, **values}).items() if k not in feeds or k in values}, ran
