"""Streaming a built model's weights into ONNX files at the speed of a file copy.

The byte layout is protobuf's wire format, written by hand: the weight-free
ModelProto is serialised by protobuf, then each weight becomes a TensorProto
(name, dims, type) followed by its raw little-endian float32 bytes. A weight
that is still a view on the memory-mapped caffemodel (``mapped.file_range``)
is copied file to file by the kernel (``os.copy_file_range``, else
``os.sendfile``); only computed constants (BatchNorm statistics, random
weights) are written from memory. With external data the model file holds each
TensorProto with ``data_location = EXTERNAL`` and (location, offset, length),
and the bytes go to a data file along the same path, each tensor at a
4096-byte aligned offset so runtimes can map it.
"""
from __future__ import annotations

import os
from typing import BinaryIO, Callable

import numpy as np
from .onnx_lite import ModelProto, StringStringEntryProto, TensorProto

from .errors import ConversionError
from .mapped import file_range
from .wire import len_header

DATA_SUFFIX = ".data"
ALIGN = 4096
_GRAPH_FIELD, _INITIALIZER_FIELD, _RAW_DATA_FIELD = 7, 5, 9  # ModelProto.graph, GraphProto.initializer, TensorProto.raw_data
Progress = Callable[[int, int], None]  # (weight bytes written so far, weight bytes in all)


def _meta(name: str, arr: np.ndarray) -> TensorProto:
    return TensorProto(name=name, data_type=TensorProto.FLOAT, dims=arr.shape)


def _head_and_graph(model: ModelProto, initializer_bytes: int) -> bytes:
    head = ModelProto()
    head.CopyFrom(model)
    head.ClearField("graph")
    graph = model.graph.SerializeToString()
    return head.SerializeToString() + len_header(_GRAPH_FIELD, len(graph) + initializer_bytes) + graph


def write_single(built, f: BinaryIO, progress: Progress | None = None) -> None:
    """One ONNX file: every weight inline as raw_data."""
    entries = []
    for name, arr in built.weights:
        arr = _as_f4(arr)
        meta = _meta(name, arr).SerializeToString()
        raw_header = len_header(_RAW_DATA_FIELD, arr.nbytes)
        prefix = len_header(_INITIALIZER_FIELD, len(meta) + len(raw_header) + arr.nbytes) + meta + raw_header
        entries.append((prefix, arr))
    f.write(_head_and_graph(built.model, sum(len(p) + a.nbytes for p, a in entries)))
    copier = _Copier(f, sum(a.nbytes for _, a in entries), progress)
    for prefix, arr in entries:
        f.write(prefix)
        copier.copy(arr)


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
    f.write(_head_and_graph(built.model, len(inits)) + inits)
    copier = _Copier(data, sum(a.nbytes for _, a in arrays), progress)
    for offset, arr in arrays:
        data.seek(offset)  # the gap, if any, stays a hole
        copier.copy(arr)


def _as_f4(arr) -> np.ndarray:
    return np.ascontiguousarray(arr, dtype="<f4")


class _Copier:
    """Appends arrays to ``f``: mapped ones file to file in the kernel, others from memory."""

    def __init__(self, f: BinaryIO, total: int, progress: Progress | None):
        self.f, self.total, self.done, self.progress = f, total, 0, progress
        self.kernel = hasattr(os, "copy_file_range") or hasattr(os, "sendfile")

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
            if done < count and self.progress and count > 64 << 20:
                self.progress(self.done + done, self.total)
        self.f.seek(pos + count)
        return True

    def _kernel_copy(self, fd: int, src: int, out: int, dst: int, count: int) -> int | None:
        step = min(count, 1 << 30)
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
