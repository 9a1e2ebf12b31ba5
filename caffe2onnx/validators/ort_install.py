"""Diagnosing an onnxruntime install where several distributions share the ``onnxruntime`` package.

onnxruntime, onnxruntime-gpu (and -directml, -openvino, ...) all install the same import package.
pip cannot make the GPU build replace the CPU one: caffe2onnx depends on ``onnxruntime``, so
``pip install 'caffe2onnx[gpu]'`` installs both, the files of whichever pip wrote last win, and
usually the CPU build answers, without CUDA. We say so once, with the command that fixes it.
"""
from __future__ import annotations

import functools
import importlib.metadata as metadata
import warnings

CPU = "onnxruntime"


class OnnxruntimeInstallWarning(UserWarning):
    """Two onnxruntime distributions are installed over each other."""


def ort_distributions() -> dict[str, str]:
    """Installed distributions that provide the ``onnxruntime`` import package: {name: version}."""
    found = {}
    for dist in metadata.distributions():
        name = (dist.metadata["Name"] or "").lower().replace("_", "-")
        if provides_onnxruntime(dist, name):
            found.setdefault(name, dist.version)  # the first on sys.path, as importlib finds it
    return dict(sorted(found.items()))


def provides_onnxruntime(dist, name: str) -> bool:
    """By top_level.txt; without one (not every wheel has it), by the files of likely names only.
    onnxruntime-extensions or -genai install other packages and do not count."""
    top = dist.read_text("top_level.txt")
    if top is not None:
        return "onnxruntime" in top.split()
    if not name.startswith(("onnxruntime", "ort-")):
        return False
    return any(str(f).startswith("onnxruntime/") for f in dist.files or ())


def fix_command(names) -> str:
    """Uninstall every one of them, then reinstall the accelerated build alone."""
    keep = next((n for n in names if n != CPU), "onnxruntime-gpu")
    return f"pip uninstall -y {' '.join(sorted(names))} && pip install {keep}"


@functools.lru_cache(maxsize=1)
def conflict() -> str | None:
    """One line naming the clashing distributions and the fix, or None when at most one is installed."""
    dists = ort_distributions()
    if len(dists) < 2:
        return None
    listed = " and ".join(f"{n} {v}" for n, v in dists.items())
    return (f"{listed} are installed together; they share the 'onnxruntime' package, so whichever pip "
            f"installed last overwrote the other and the CUDA provider is usually missing. Keep one: "
            f"{fix_command(dists)}")


def warn_if_conflict() -> str | None:
    """Warns once per process (``caffe2onnx: warning: ...`` in the CLI); returns the diagnosis."""
    message = conflict()
    if message is not None:
        _warn_once(message)
    return message


@functools.lru_cache(maxsize=1)
def _warn_once(message: str) -> None:
    warnings.warn(message, OnnxruntimeInstallWarning, stacklevel=3)
