"""Starting worker processes that cannot pick up code from the user's or the net's directory.

Workers run as ``python -I script.py``: isolated mode puts neither the script's
directory, the current directory nor ``PYTHON*`` environment variables on
``sys.path``. The entries of the caller's ``PYTHONPATH`` that are absolute and
point outside the current directory and the net's directory are handed over
explicitly (pycaffe is often installed that way). A worker that runs past its
time limit is killed with its whole process group.
"""
from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path
from typing import Iterable, Sequence

from ..errors import Caffe2OnnxError

DEFAULT_TIMEOUT = 600.0  # seconds per reference or onnxruntime run


class WorkerTimeout(Caffe2OnnxError):
    """A reference or onnxruntime worker ran past its time limit and was killed."""


def _inside(path: Path, dirs: Iterable[Path]) -> bool:
    return any(path == d or d in path.parents for d in dirs)


def safe_sys_path(untrusted_dirs: Sequence[str | Path] = ()) -> list[str]:
    """The caller's PYTHONPATH without relative entries or entries under the cwd / the given dirs."""
    bad = [Path.cwd().resolve()] + [Path(d).resolve() for d in untrusted_dirs]
    out = []
    for entry in os.environ.get("PYTHONPATH", "").split(os.pathsep):
        if entry and os.path.isabs(entry) and not _inside(Path(entry).resolve(), bad):
            out.append(entry)
    return out


def worker_command(python: str, script: Path, args: Sequence[str], untrusted_dirs: Sequence[str | Path] = ()) -> list[str]:
    paths = os.pathsep.join(safe_sys_path(untrusted_dirs))
    return [python, "-I", str(script), f"--sys-path={paths}", *args]


def run_worker(cmd: list[str], env: dict[str, str], timeout: float, what: str, cwd: str | None = None
               ) -> subprocess.CompletedProcess:
    """Runs ``cmd``; on timeout or interrupt kills its process group and waits for it."""
    proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            errors="replace", start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill(proc)
        raise WorkerTimeout(f"{what} ran longer than the time limit of {timeout:g} s and was stopped "
                            "(raise it with --timeout)") from None
    except BaseException:
        _kill(proc)
        raise
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


def _kill(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    proc.communicate()
