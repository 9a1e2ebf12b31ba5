"""Real Caffe as the reference: every blob of a forward pass, run in a subprocess."""
from __future__ import annotations

import functools
import os
import sys
import tempfile
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from ..errors import Caffe2OnnxError
from .caffe_worker import SEP
from .isolation import DEFAULT_TIMEOUT, WorkerTimeout, run_worker, worker_command

WORKER = Path(__file__).with_name("caffe_worker.py")


class CaffeUnavailable(Caffe2OnnxError):
    """pycaffe cannot be imported by the chosen Python."""


class CaffeRejected(Caffe2OnnxError):
    """Real Caffe refused the net or crashed; ``log`` holds what it printed."""

    def __init__(self, message: str, log: str):
        super().__init__(message)
        self.log = log


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("GLOG_minloglevel", "2")
    env.setdefault("OPENBLAS_NUM_THREADS", "1")  # bit-for-bit repeatable runs
    return env


@functools.lru_cache(maxsize=None)
def caffe_layer_types(python: str = sys.executable) -> frozenset[str] | None:
    """The layer types that Python's real Caffe registers; None when ``import caffe`` fails there."""
    try:
        r = run_worker(worker_command(python, WORKER, ["--check"]), _env(), 120, "import caffe")
    except (OSError, WorkerTimeout):
        return None
    return frozenset(r.stdout.split()) if r.returncode == 0 else None


def caffe_available(python: str = sys.executable) -> bool:
    """True when ``import caffe`` works for that Python (checked once, in an isolated subprocess)."""
    return caffe_layer_types(python) is not None


caffe_available.cache_clear = caffe_layer_types.cache_clear  # type: ignore[attr-defined]

# Types real Caffe here registers but computes otherwise than the fork caffe2onnx follows.
_COMPUTES_OTHERWISE = {
    "PSROIPooling": "its CPU forward is not implemented (it aborts)",
}


def caffe_cannot_judge(net, python: str = sys.executable) -> str | None:
    """Why real Caffe cannot be the judge of ``net`` (a layer it lacks or computes otherwise), or None."""
    have = caffe_layer_types(python) or frozenset()
    for layer in net.layers:
        head = f"layer '{layer.name}' (type {layer.type})"
        if layer.type not in have:
            return f"{head}: the installed Caffe has no {layer.type} layer"
        if layer.type in _COMPUTES_OTHERWISE:
            return f"{head}: the installed Caffe's {_COMPUTES_OTHERWISE[layer.type]}"
        if layer.type == "Upsample" and len(layer.inputs) == 2:
            return f"{head}: the installed Caffe ignores the pooling mask of SegNet's two-bottom Upsample"
    return None


def run_caffe(prototxt: str | Path, caffemodel: str | Path | None, inputs: Mapping[str, np.ndarray],
              python: str = sys.executable, timeout: float = DEFAULT_TIMEOUT,
              untrusted_dirs: Sequence[str | Path] = ()) -> dict[tuple[str, str], np.ndarray]:
    """Runs the net in real Caffe; returns {(layer name, top blob): value} plus {("", input): value}.

    The worker is isolated (``python -I``, no path of the net's directory or the cwd on
    sys.path, nor any under ``untrusted_dirs``; started in its temporary directory) and
    killed after ``timeout`` seconds.
    """
    if not caffe_available(python):
        raise CaffeUnavailable(f"real Caffe (pycaffe) is not importable by {python}")
    with tempfile.TemporaryDirectory(prefix="caffe2onnx-caffe-") as tmp:
        in_path, out_path = Path(tmp, "inputs.npz"), Path(tmp, "out.npz")
        np.savez(in_path, **{k: np.asarray(v, np.float32) for k, v in inputs.items()})
        args = [str(Path(prototxt).resolve()), str(Path(caffemodel).resolve()) if caffemodel else "-",
                str(in_path), str(out_path)]
        cmd = worker_command(python, WORKER, args, [Path(prototxt).resolve().parent, *untrusted_dirs])
        r = run_worker(cmd, _env(), timeout, "real Caffe", cwd=tmp)
        if r.returncode != 0:
            log = (r.stderr or "") + (r.stdout or "")
            last = [l for l in log.strip().splitlines() if l.strip()][-3:]
            raise CaffeRejected(f"real Caffe failed on {prototxt} (exit {r.returncode}): "
                                + " | ".join(l[:200] for l in last), log)
        with np.load(out_path, allow_pickle=False) as data:
            out = {}
            for key in data.files:
                layer, _, top = key.rpartition(SEP) if SEP in key else ("", "", key)
                out[(layer, top)] = data[key]
            return out


def blobs_for_net(net, caffe_out: Mapping[tuple[str, str], np.ndarray]) -> dict[str, np.ndarray]:
    """Maps real Caffe's per-layer captures onto the tensor names of a loaded ``Net``."""
    out = {}
    for name, tensor in net.tensors.items():
        key = ("", tensor.blob) if tensor.producer is None else (tensor.producer, tensor.blob)
        if key in caffe_out:
            out[name] = caffe_out[key]
    return out
