"""Fast reading of binary caffemodels.

Parsing a 550 MB caffemodel with protobuf and turning its repeated floats into
numpy arrays costs seconds and several copies. Instead we walk the wire format
ourselves: blob payloads (packed floats) become zero-copy ``np.frombuffer``
views on the file's bytes, and only the small remainder (layer names, types,
parameters) goes through protobuf. Unpacked floats (very old writers: one
field per value) are scanned a run at a time with numpy, never one Python
object per value.

Bounds: the file is a regular file of at most 2 GiB - 1 bytes (protobuf's and
Caffe's limit), checked before reading; a blob shape has at most 32 axes
(Caffe's kMaxBlobAxes); every other count is bounded by the bytes it occupies.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from google.protobuf.message import DecodeError

from .. import proto
from ..errors import CaffeParseError, ResourceLimitError, summarize
from ..mapped import map_file
from ..safe_io import MAX_CAFFEMODEL_BYTES, MAX_NET_BYTES, check_input_file
from ..wire import len_header

_NET_LAYER, _NET_LAYERS = 100, 2  # NetParameter.layer (current), NetParameter.layers (V1)
_BLOBS = {_NET_LAYER: 7, _NET_LAYERS: 6}  # LayerParameter.blobs, V1LayerParameter.blobs
MAX_BLOB_AXES = 32  # Caffe's kMaxBlobAxes
MAX_DECODED_BYTES = 4 << 30  # blobs that must be decoded (unpacked floats, double_data), in all
_UNPACKED = {5: (5, "<f4"), 8: (1, "<f8")}  # BlobProto.data / double_data: (wire type of one value, dtype)


@dataclass(frozen=True)
class RawBlob:
    """A blob as stored: its data and either a shape or legacy num/channels/height/width."""

    data: np.ndarray
    shape: tuple[int, ...] | None
    legacy: tuple[int, int, int, int] | None


class _Reader:
    def __init__(self, buf: memoryview, path: str):
        self.buf = buf
        self.path = path
        # Bytes copied out of the map, each budget checked before its copy is made.
        self.left = {"net": MAX_NET_BYTES, "blobs": MAX_DECODED_BYTES}

    def spend(self, budget: str, n: int, what: str) -> None:
        self.left[budget] -= n
        if self.left[budget] < 0:
            limit = MAX_NET_BYTES if budget == "net" else MAX_DECODED_BYTES
            raise ResourceLimitError(f"{self.path}: {what} would take more than {limit / 2**20:,.0f} MiB of memory "
                                     "(packed float blobs are read in place and count for nothing)")

    def fail(self, pos: int, what: str) -> CaffeParseError:
        return CaffeParseError(f"{self.path}: truncated or corrupt caffemodel at byte {pos}: {what}")

    def varint(self, pos: int, end: int) -> tuple[int, int]:
        result = shift = 0
        buf = self.buf
        while True:
            if pos >= end:
                raise self.fail(pos, "varint runs past the end of its message")
            b = buf[pos]
            pos += 1
            result |= (b & 0x7F) << shift
            if b < 0x80:
                return result, pos
            shift += 7
            if shift > 63:
                raise self.fail(pos, "varint longer than 10 bytes")

    def fields(self, pos: int, end: int):
        """Yields (field number, wire type, value start, value end, field start)."""
        while pos < end:
            number, wire, vstart, vend = self.field(pos, end)
            yield number, wire, vstart, vend, pos
            pos = vend

    def field(self, pos: int, end: int) -> tuple[int, int, int, int]:
        """(field number, wire type, value start, value end) of the field starting at ``pos``."""
        start = pos
        key, pos = self.varint(pos, end)
        number, wire = key >> 3, key & 7
        if number == 0:
            raise self.fail(start, "field number 0")
        if wire == 0:
            vstart = pos
            _, pos = self.varint(pos, end)
        elif wire == 1:
            vstart, pos = pos, pos + 8
        elif wire == 2:
            length, vstart = self.varint(pos, end)
            pos = vstart + length
        elif wire == 5:
            vstart, pos = pos, pos + 4
        else:
            raise self.fail(start, f"unsupported wire type {wire} for field {number}")
        if pos > end:
            raise self.fail(start, f"field {number} runs past the end of its message")
        return number, wire, vstart, pos


def read_caffemodel(path: str | Path) -> tuple[object, list[list[RawBlob]]]:
    """Returns (NetParameter without blobs, blobs per layer in file order)."""
    path = str(path)
    check_input_file(path, "caffemodel", MAX_CAFFEMODEL_BYTES)  # a regular file, size bounded, before mapping
    try:
        data = map_file(path)  # blobs become views on the map; the writer splices them (mapped.py)
    except OSError as e:
        raise CaffeParseError(f"{path}: cannot read caffemodel: {e.strerror}") from None
    if not data:
        raise CaffeParseError(f"{path}: empty caffemodel")
    reader = _Reader(data, path)
    stripped = bytearray()
    blobs: list[list[RawBlob]] = []
    for number, wire, vstart, vend, fstart in reader.fields(0, len(data)):
        if number in _BLOBS and wire == 2:
            layer_bytes, layer_blobs = _split_layer(reader, vstart, vend, _BLOBS[number])
            stripped += len_header(number, len(layer_bytes)) + layer_bytes
            blobs.append(layer_blobs)
        else:
            reader.spend("net", vend - fstart, "the net without its blobs")
            stripped += data[fstart:vend]
    net = proto.current().NetParameter()
    try:
        net.ParseFromString(bytes(stripped))
    except DecodeError as e:
        raise CaffeParseError(f"{path}: corrupt caffemodel (not a Caffe NetParameter): {e}") from None
    if len(net.layer) and len(net.layers):
        raise CaffeParseError(f"{path}: caffemodel mixes V1 'layers' and current 'layer' entries ("
                              + _mixed_entries(net) + "); Caffe refuses to upgrade such a file, "
                              "and which weights are meant cannot be told")
    n_layers = len(net.layer) + len(net.layers)
    if n_layers != len(blobs):
        raise CaffeParseError(f"{path}: corrupt caffemodel: {n_layers} layers parsed, {len(blobs)} found")
    if not n_layers:
        raise CaffeParseError(f"{path}: not a caffemodel: it holds no layers")
    return net, blobs


def _mixed_entries(net) -> str:
    v1 = {l.name: i for i, l in reversed(list(enumerate(net.layers)))}
    both = [f"'{l.name}' is V1 layers #{v1[l.name]} and layer #{i}" for i, l in enumerate(net.layer) if l.name in v1]
    if both:
        return f"{len(both)} name(s) in both: " + summarize(both)
    return f"V1 layers '{net.layers[0].name}' and layer '{net.layer[0].name}'"


def _split_layer(reader: _Reader, pos: int, end: int, blob_field: int) -> tuple[bytes, list[RawBlob]]:
    rest = bytearray()
    blobs = []
    for number, wire, vstart, vend, fstart in reader.fields(pos, end):
        if number == blob_field and wire == 2:
            blobs.append(_read_blob(reader, vstart, vend))
        else:
            reader.spend("net", vend - fstart, "the net without its blobs")
            rest += reader.buf[fstart:vend]
    return bytes(rest), blobs


def _read_blob(reader: _Reader, pos: int, end: int) -> RawBlob:
    legacy = {}
    shape = None
    floats: list[np.ndarray] = []
    doubles: list[np.ndarray] = []
    start = pos
    while pos < end:
        number, wire, vstart, vend = reader.field(pos, end)
        if number in (1, 2, 3, 4) and wire == 0:  # num, channels, height, width
            legacy[number] = _signed32(reader.varint(vstart, vend)[0])
        elif number == 7 and wire == 2:  # shape: BlobShape
            shape = [] if shape is None else shape
            shape += _read_dims(reader, vstart, vend)
            if len(shape) > MAX_BLOB_AXES:
                raise reader.fail(vstart, f"blob shape with {len(shape)} axes (Caffe allows {MAX_BLOB_AXES})")
        elif number in _UNPACKED:  # data (packed float, or unpacked from very old writers), double_data
            one_wire, dtype = _UNPACKED[number]
            if wire == one_wire:
                arr, vend = _unpacked_run(reader, pos, end, dtype)
            else:
                arr = _fixed(reader.buf, vstart, vend, wire, dtype, reader)
            (floats if number == 5 else doubles).append(arr)
        pos = vend
    if floats and doubles:
        raise reader.fail(start, "blob holds both data and double_data")
    parts = floats or doubles
    if not parts:
        arr = np.zeros(0, np.float32)
    elif len(parts) == 1:
        arr = parts[0]
    else:
        reader.spend("blobs", sum(p.size for p in parts) * parts[0].itemsize, "the blobs stored in pieces")
        arr = np.concatenate(parts)
    if arr.dtype != np.float32:
        reader.spend("blobs", arr.size * 4, "the double_data blobs")
        arr = arr.astype(np.float32)
    leg = tuple(legacy.get(i, 0) for i in (1, 2, 3, 4)) if legacy else None
    return RawBlob(arr, tuple(shape) if shape is not None else None, leg)


def _unpacked_run(reader: _Reader, pos: int, end: int, dtype: str) -> tuple[np.ndarray, int]:
    """The values of consecutive one-value fields starting at ``pos`` (same one-byte key), and the end.

    Looked at as a (records, 1 + itemsize) byte matrix: the run lasts while column 0 is
    the key byte. Checked in doubling chunks, so a short run costs little.
    """
    buf = reader.buf
    key = buf[pos]
    rec = 1 + np.dtype(dtype).itemsize
    n_max = (end - pos) // rec
    table = np.frombuffer(buf, np.uint8, count=n_max * rec, offset=pos).reshape(n_max, rec)
    n, chunk = 0, 1024
    while n < n_max:
        m = min(chunk, n_max - n)
        other = np.flatnonzero(table[n:n + m, 0] != key)
        if other.size:
            n += int(other[0])
            break
        n, chunk = n + m, chunk * 2
    if n == 0:  # a key in a longer varint form: read this one value alone
        number, wire, vstart, vend = reader.field(pos, end)
        return np.frombuffer(buf, dtype=dtype, count=1, offset=vstart).copy(), vend
    reader.spend("blobs", n * (rec - 1), "the unpacked float blobs")
    values = np.ascontiguousarray(table[:n, 1:]).view(dtype).reshape(n)
    return values, pos + n * rec


def _read_dims(reader: _Reader, pos: int, end: int) -> list[int]:
    dims = []
    for number, wire, vstart, vend, _ in reader.fields(pos, end):
        if number != 1:
            continue
        if wire == 0:
            dims.append(_signed64(reader.varint(vstart, vend)[0]))
        elif wire == 2:
            p = vstart
            while p < vend:
                v, p = reader.varint(p, vend)
                dims.append(_signed64(v))
                if len(dims) > MAX_BLOB_AXES:
                    raise reader.fail(vstart, f"blob shape with more than {MAX_BLOB_AXES} axes")
        if len(dims) > MAX_BLOB_AXES:
            raise reader.fail(vstart, f"blob shape with more than {MAX_BLOB_AXES} axes")
    return dims


def _fixed(buf, start: int, end: int, wire: int, dtype: str, reader) -> np.ndarray:
    size = np.dtype(dtype).itemsize
    if wire == 2:
        if (end - start) % size:
            raise reader.fail(start, f"packed array of {end - start} bytes is not a multiple of {size}")
        return np.frombuffer(buf, dtype=dtype, count=(end - start) // size, offset=start)
    raise reader.fail(start, f"blob data with wire type {wire}")


def _signed32(v: int) -> int:
    v &= 0xFFFFFFFF
    return v - (1 << 32) if v >= 1 << 31 else v


def _signed64(v: int) -> int:
    return v - (1 << 64) if v >= 1 << 63 else v
