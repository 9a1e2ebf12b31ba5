"""sha256 of the source files, computed beside the conversion rather than before it.

Kept free of numpy and protobuf so that ``convert`` can start hashing a large caffemodel before
it imports anything heavy.
"""
from __future__ import annotations

import hashlib
import mmap
import os
import threading
from pathlib import Path
from typing import Callable

from .errors import InputFileError
from .safe_io import open_regular

# Hashed through read-only maps of this size, one at a time: no copy into Python (a read() of the
# file costs a third more), memory bounded whatever the file's size, and each window is one
# hashlib call without the GIL, so the hash runs beside the imports and the weight copy.
_WINDOW = 64 << 20


def sha256_file(path: str | Path, cancelled: Callable[[], bool] = lambda: False) -> str | None:
    """sha256 of a regular file (a 550 MB caffemodel costs ~0.35 s on one core, 64 MB of memory);
    None if ``cancelled()`` turns true between windows.

    OSError if it cannot be opened or is not a regular file; InputFileError if it changes (size
    or mtime) while it is hashed.
    """
    fd, before = open_regular(path)
    try:
        h = hashlib.sha256()
        for offset in range(0, before.st_size, _WINDOW):
            if cancelled():
                return None
            with mmap.mmap(fd, min(_WINDOW, before.st_size - offset), offset=offset, access=mmap.ACCESS_READ) as m:
                h.update(m)
        after = os.fstat(fd)
    finally:
        os.close(fd)
    if (after.st_size, after.st_mtime_ns) != (before.st_size, before.st_mtime_ns):
        raise InputFileError(f"{path} changed while it was being converted")
    return h.hexdigest()


class SourceDigests:
    """The sha256 of each source file, computed in a background thread from the moment its path is
    known: a caffemodel's hash then overlaps the imports and the weight copy instead of adding to
    them (the model's doc_string is written after the weights, see BuiltModel.trailer).

    A context manager: leaving it (a conversion that failed early, say) stops the thread at its
    next window, as does the process exiting (it is a daemon), so nobody waits for the rest of
    a large file's hash that will not be used.
    """

    def __init__(self, *paths: str | Path | None):
        self._results: dict[str, tuple[str | None, BaseException | None]] = {}
        self._paths = [os.fspath(p) for p in paths if p]
        self._done, self._stop = threading.Event(), threading.Event()
        self._thread = threading.Thread(target=self._run, name="sha256", daemon=True)
        self._thread.start()

    def __enter__(self) -> "SourceDigests":
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()

    def _run(self) -> None:
        stopped = lambda: self._stop.is_set() or not threading.main_thread().is_alive()  # noqa: E731
        try:
            for p in self._paths:
                try:
                    self._results[p] = (sha256_file(p, stopped), None)
                except (OSError, InputFileError) as e:
                    self._results[p] = (None, e)
        finally:
            self._done.set()

    def get(self, path: str | Path) -> str:
        key = os.fspath(path)
        if key not in self._paths or self._stop.is_set():
            return sha256_file(path)
        self._done.wait()
        digest, error = self._results[key]
        if error is not None:
            raise error if isinstance(error, InputFileError) else InputFileError(
                f"{path}: cannot read it to hash it: {error.strerror or error}")
        return digest
