"""Fast reading of binary caffemodels.

Parsing a 550 MB caffemodel with protobuf and turning its repeated floats into
numpy arrays costs seconds and several copies. Instead we walk the wire format
ourselves: blob payloads (packed floats) become zero-copy ``np.frombuffer``
views on the file's bytes, and only the small remainder (layer names, types,
parameters) goes through protobuf.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from google.protobuf.message import DecodeError

from .. import proto
from ..errors import CaffeParseError
from ..mapped import map_file
from ..wire import len_header

_NET_LAYER, _NET_LAYERS = 100, 2  # NetParameter.layer (current), NetParameter.layers (V1)
_BLOBS = {_NET_LAYER: 7, _NET_LAYERS: 6}  # LayerParameter.blobs, V1LayerParameter.blobs


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
            yield number, wire, vstart, pos, start


def read_caffemodel(path: str | Path) -> tuple[object, list[list[RawBlob]]]:
    """Returns (NetParameter without blobs, blobs per layer in file order)."""
    path = str(path)
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
            stripped += data[fstart:vend]
    net = proto.NetParameter()
    try:
        net.ParseFromString(bytes(stripped))
    except DecodeError as e:
        raise CaffeParseError(f"{path}: corrupt caffemodel (not a Caffe NetParameter): {e}") from None
    n_layers = len(net.layer) + len(net.layers)
    if n_layers != len(blobs):
        raise CaffeParseError(f"{path}: corrupt caffemodel: {n_layers} layers parsed, {len(blobs)} found")
    if not n_layers:
        raise CaffeParseError(f"{path}: not a caffemodel: it holds no layers")
    return net, blobs


def _split_layer(reader: _Reader, pos: int, end: int, blob_field: int) -> tuple[bytes, list[RawBlob]]:
    rest = bytearray()
    blobs = []
    for number, wire, vstart, vend, fstart in reader.fields(pos, end):
        if number == blob_field and wire == 2:
            blobs.append(_read_blob(reader, vstart, vend))
        else:
            rest += reader.buf[fstart:vend]
    return bytes(rest), blobs


def _read_blob(reader: _Reader, pos: int, end: int) -> RawBlob:
    buf = reader.buf
    legacy = {}
    shape = None
    floats: list[np.ndarray] = []
    doubles: list[np.ndarray] = []
    for number, wire, vstart, vend, fstart in reader.fields(pos, end):
        if number in (1, 2, 3, 4) and wire == 0:  # num, channels, height, width
            legacy[number] = _signed32(reader.varint(vstart, vend)[0])
        elif number == 7 and wire == 2:  # shape: BlobShape
            shape = [] if shape is None else shape
            shape += _read_dims(reader, vstart, vend)
        elif number == 5:  # data: packed float (or unpacked, from very old writers)
            floats.append(_fixed(buf, vstart, vend, wire, "<f4", 5, reader))
        elif number == 8:  # double_data
            doubles.append(_fixed(buf, vstart, vend, wire, "<f8", 1, reader))
    if floats and doubles:
        raise reader.fail(pos, "blob holds both data and double_data")
    parts = floats or doubles
    if not parts:
        arr = np.zeros(0, np.float32)
    elif len(parts) == 1:
        arr = parts[0]
    else:
        arr = np.concatenate(parts)
    if arr.dtype != np.float32:
        arr = arr.astype(np.float32)
    leg = tuple(legacy.get(i, 0) for i in (1, 2, 3, 4)) if legacy else None
    return RawBlob(arr, tuple(shape) if shape is not None else None, leg)


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
    return dims


def _fixed(buf, start: int, end: int, wire: int, dtype: str, unpacked_wire: int, reader) -> np.ndarray:
    size = np.dtype(dtype).itemsize
    if wire == 2:
        if (end - start) % size:
            raise reader.fail(start, f"packed array of {end - start} bytes is not a multiple of {size}")
        return np.frombuffer(buf, dtype=dtype, count=(end - start) // size, offset=start)
    if wire == unpacked_wire:
        return np.frombuffer(buf, dtype=dtype, count=1, offset=start)
    raise reader.fail(start, f"blob data with wire type {wire}")


def _signed32(v: int) -> int:
    v &= 0xFFFFFFFF
    return v - (1 << 32) if v >= 1 << 31 else v


def _signed64(v: int) -> int:
    return v - (1 << 64) if v >= 1 << 63 else v
