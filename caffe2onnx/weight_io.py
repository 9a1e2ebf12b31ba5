"""Streaming a built model's weights into ONNX files at the speed of a file copy.

The byte layout is protobuf's wire format, written by hand: the weight-free
ModelProto is serialised by protobuf, then each weight becomes a TensorProto
(name, dims, type) followed by its raw little-endian float32 bytes. A weight
that is still a view on the memory-mapped caffemodel (``mapped.file_range``)
is copied file to file by the kernel (``os.copy_file_range``, else
``os.sendfile``), its raw bytes placed at the same offset within a page as in
the caffemodel (a TensorProto.doc_string of spaces pads the gap) so that the
kernel copies whole pages; only computed constants (BatchNorm statistics,
random weights) are written from memory. Disk writeback runs while copying
(``_Copier``), and fields known only at the end (the sources' sha256, hashed
meanwhile) follow the graph as a trailer, which protobuf merges into the
model as if they stood before it. With external data the model file holds each
TensorProto with ``data_location = EXTERNAL`` and (location, offset, length),
and the bytes go to a data file along the same path, each tensor at a
4096-byte aligned offset so runtimes can map it.
"""
from __future__ import annotations

import os
import threading
from typing import BinaryIO, Callable

import numpy as np
from .onnx_lite import ModelProto, StringStringEntryProto, TensorProto

from .errors import ConversionError
from .mapped import file_range
from .wire import len_header

DATA_SUFFIX = ".data"
ALIGN = 4096
_GRAPH_FIELD, _INITIALIZER_FIELD, _RAW_DATA_FIELD = 7, 5, 9  # ModelProto.graph, GraphProto.initializer, TensorProto.raw_data
_DOC_STRING_FIELD = 12  # TensorProto.doc_string: carries the padding that page-aligns a spliced weight
PAGE = 4096
_ALIGN_MIN = 64 << 10  # below this a shifted copy costs nothing measurable
Progress = Callable[[int, int], None]  # (weight bytes written so far, weight bytes in all)


def _meta(name: str, arr: np.ndarray) -> TensorProto:
    return TensorProto(name=name, data_type=TensorProto.FLOAT, dims=arr.shape)


def _head_and_graph(model: ModelProto) -> tuple[bytes, bytes]:
    """The model without its graph, and the graph without initializers (both serialised)."""
    head = ModelProto()
    head.CopyFrom(model)
    head.ClearField("graph")
    return head.SerializeToString(), model.graph.SerializeToString()


def _opening(model: ModelProto, initializer_bytes: int) -> bytes:
    head, graph = _head_and_graph(model)
    return head + len_header(_GRAPH_FIELD, len(graph) + initializer_bytes) + graph


def write_single(built, f: BinaryIO, progress: Progress | None = None) -> None:
    """One ONNX file: every weight inline as raw_data, spliced ones at their page offset."""
    weights = []
    for name, arr in built.weights:
        arr = _as_f4(arr)
        weights.append((_meta(name, arr).SerializeToString(), arr))  # once, not per padding pass
    head, graph = _head_and_graph(built.model)
    start = len(head) + len(graph) + 6  # the graph's own header: at most 6 bytes below 2 GiB
    for align in (True, True, True, False):  # the opening's length decides the padding, and back
        entries = _entries(weights, start, align)
        total = sum(len(p) + a.nbytes for p, a in entries)
        opening = head + len_header(_GRAPH_FIELD, len(graph) + total) + graph
        if len(opening) == start:
            break
        start = len(opening)
    f.write(opening)
    with _Copier(f, sum(a.nbytes for _, a in entries), progress) as copier:
        for prefix, arr in entries:
            f.write(prefix)
            copier.copy(arr)
    _write_trailer(built, f)


def _entries(weights, start: int, align: bool) -> list[tuple[bytes, np.ndarray]]:
    """Each weight (its serialised TensorProto header, its array) as the file's bytes up to its raw
    data; with ``align``, those of a spliced weight begin at the same offset within a page as in
    the caffemodel: the kernel then copies whole pages (a third faster to copy and to write back
    than at a shifted offset, measured)."""
    entries, pos = [], start
    for meta, arr in weights:
        src = file_range(arr) if align and arr.nbytes >= _ALIGN_MIN else None
        if src is not None:
            meta += _padding(pos, meta, arr.nbytes, src[1])
        prefix = _prefix(meta, arr.nbytes)
        entries.append((prefix, arr))
        pos += len(prefix) + arr.nbytes
    return entries


def _prefix(meta: bytes, nbytes: int) -> bytes:
    raw_header = len_header(_RAW_DATA_FIELD, nbytes)
    return len_header(_INITIALIZER_FIELD, len(meta) + len(raw_header) + nbytes) + meta + raw_header


def _padding(pos: int, meta: bytes, nbytes: int, src_offset: int) -> bytes:
    """A TensorProto.doc_string of spaces that puts the raw bytes at ``src_offset`` modulo a page."""
    base = len(_prefix(meta, nbytes))
    need = (src_offset - pos - base) % PAGE
    for extra in ((need, need + PAGE) if need else ()):
        for k in range(max(0, extra - 8), extra):
            pad = len_header(_DOC_STRING_FIELD, k) + b" " * k
            if len(_prefix(meta + pad, nbytes)) == base + extra:
                return pad
    return b""


def write_external(built, f: BinaryIO, data: BinaryIO, location: str, progress: Progress | None = None) -> None:
    """The model to ``f``, every weight's bytes to ``data`` (referenced as ``location``)."""
    metas, arrays, offset = [], [], 0
    for name, arr in built.weights:
        arr = _as_f4(arr)
        offset = -(-offset // ALIGN) * ALIGN
        t = _meta(name, arr)
        t.data_location = TensorProto.EXTERNAL
        t.external_data.extend(StringStringEntryProto(key=k, value=str(v)) for k, v in
                               (("location", location), ("offset", offset), ("length", arr.nbytes)))
        metas.append(t.SerializeToString())
        arrays.append((offset, arr))
        offset += arr.nbytes
    inits = b"".join(len_header(_INITIALIZER_FIELD, len(m)) + m for m in metas)
    f.write(_opening(built.model, len(inits)) + inits)
    with _Copier(data, sum(a.nbytes for _, a in arrays), progress) as copier:
        for offset, arr in arrays:
            data.seek(offset)  # the gap, if any, stays a hole
            copier.copy(arr)
    _write_trailer(built, f)


def _write_trailer(built, f: BinaryIO) -> None:
    if built.trailer is not None:
        f.write(built.trailer().SerializeToString())


def _as_f4(arr) -> np.ndarray:
    return np.ascontiguousarray(arr, dtype="<f4")


class _Copier:
    """Appends arrays to ``f``: mapped ones file to file in the kernel, others from memory.

    While it copies, a thread keeps the disk busy with what is copied so far (fdatasync in a
    loop), so the output is on disk soon after the last byte is copied instead of a file's worth
    of writeback starting at the end (atomic_output syncs once more before the rename). A
    spliced weight is one kernel call (a step per ``STEP`` bytes when progress is shown): the
    copy then needs the GIL once per weight, not between steps, while the checks hold it.
    """

    FLUSH_FROM = 64 << 20  # smaller outputs: the final sync alone is as quick
    STEP = 64 << 20

    def __init__(self, f: BinaryIO, total: int, progress: Progress | None):
        self.f, self.total, self.done, self.progress = f, total, 0, progress
        self.kernel = hasattr(os, "copy_file_range") or hasattr(os, "sendfile")
        self.stop, self.flusher = threading.Event(), None
        if total >= self.FLUSH_FROM:
            self.flusher = threading.Thread(target=self._flush, args=(f.fileno(),), name="fdatasync", daemon=True)

    def __enter__(self) -> "_Copier":
        if self.flusher is not None:
            self.flusher.start()
        return self

    def __exit__(self, *exc) -> None:
        if self.flusher is not None:  # before the file can be closed: never sync a reused descriptor
            self.stop.set()
            self.flusher.join()

    def _flush(self, fd: int) -> None:
        while not self.stop.wait(0.02):
            try:
                os.fdatasync(fd)
            except OSError:  # a filesystem without it: atomic_output's own sync reports what matters
                return

    def copy(self, arr: np.ndarray) -> None:
        src = file_range(arr) if self.kernel else None
        if src is None or not self._splice(*src, arr.nbytes):
            self.f.write(memoryview(arr).cast("B"))
        self._advance(arr.nbytes)

    def _splice(self, fd: int, offset: int, count: int) -> bool:
        """Copies ``count`` bytes at ``offset`` of ``fd`` to the output; False if the kernel cannot."""
        self.f.flush()
        out = self.f.fileno()
        pos = self.f.tell()
        done = 0
        while done < count:
            n = self._kernel_copy(fd, offset + done, out, pos + done, count - done)
            if n is None:
                if done:  # partially copied, then refused: finish from memory after what was copied
                    self.f.seek(pos)
                return False
            if n == 0:
                raise ConversionError("the caffemodel shrank while it was being converted")
            done += n
            if done < count and self.progress:
                self.progress(self.done + done, self.total)
        self.f.seek(pos + count)
        return True

    def _kernel_copy(self, fd: int, src: int, out: int, dst: int, count: int) -> int | None:
        step = min(count, self.STEP if self.progress else 1 << 30)
        if hasattr(os, "copy_file_range"):
            try:
                return os.copy_file_range(fd, out, step, src, dst)
            except OSError:  # EXDEV on old kernels, ENOSYS, EOPNOTSUPP, EINVAL on some filesystems
                pass
        if hasattr(os, "sendfile"):
            try:
                os.lseek(out, dst, os.SEEK_SET)
                return os.sendfile(out, fd, src, step)
            except OSError:
                pass
        self.kernel = False
        return None

    def _advance(self, n: int) -> None:
        self.done += n
        if self.progress:
            self.progress(self.done, self.total)
