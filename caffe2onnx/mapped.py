"""Read-only memory maps of input files, and where an array's bytes lie in them.

The caffemodel is mapped rather than read: scanning its wire format touches
only the field headers, its blobs become numpy views on the map, and when a
weight is written the writer asks ``file_range`` whether the array is such a
view. If it is, the bytes go file to file in the kernel (``os.copy_file_range``)
without passing through Python and without a second copy in memory. A lookup
by address works through every reshape the binder and the mappings make, so no
offsets need threading through the IR. Each map keeps its own descriptor of
the file it mapped (closed when the map dies), so a file renamed over the path
meanwhile cannot mix into the output.
"""
from __future__ import annotations

import mmap
import os
import weakref
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .safe_io import open_regular

_MAPS: dict[int, "_Mapped"] = {}  # base address -> live map


@dataclass(frozen=True)
class _Mapped:
    fd: int
    base: int
    size: int
    map: weakref.ref


def map_file(path: str | Path) -> memoryview:
    """The whole file as a read-only memoryview (b"" for an empty file); raises OSError."""
    fd, st = open_regular(path)
    try:
        size = st.st_size
        if size == 0:
            os.close(fd)
            return memoryview(b"")
        m = mmap.mmap(fd, 0, access=mmap.ACCESS_READ)
    except BaseException:
        os.close(fd)
        raise
    base = np.frombuffer(m, np.uint8, count=1).__array_interface__["data"][0]
    _MAPS[base] = _Mapped(fd, base, size, weakref.ref(m))
    weakref.finalize(m, _forget, base, fd)
    return memoryview(m)


def _forget(base: int, fd: int) -> None:
    _MAPS.pop(base, None)
    os.close(fd)


def file_range(arr: np.ndarray) -> tuple[int, int] | None:
    """(fd, byte offset) if ``arr`` is a C-contiguous little-endian float32 view on a mapped file."""
    if arr.dtype != np.dtype("<f4") or not arr.flags.c_contiguous or arr.nbytes == 0:
        return None
    addr = arr.__array_interface__["data"][0]
    for m in list(_MAPS.values()):
        if m.base <= addr and addr + arr.nbytes <= m.base + m.size and m.map() is not None:
            return m.fd, addr - m.base
    return None
