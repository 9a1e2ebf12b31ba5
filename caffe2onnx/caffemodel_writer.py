"""Writing caffemodels: the inverse of parser.caffemodel, streaming blob payloads.

Used for seeded random weights that real Caffe must read too (tests,
benchmarks, examples). Blob data goes straight from numpy to the file, so a
550 MB model needs no second in-memory copy.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable

import numpy as np

from . import proto
from .wire import len_header, varint


def _blob_header(shape: tuple[int, ...], nbytes: int) -> bytes:
    dims = b"".join(varint(d) for d in shape)
    shape_msg = len_header(1, len(dims)) + dims if shape else b""  # BlobShape.dim, packed
    return (len_header(7, len(shape_msg)) + shape_msg  # BlobProto.shape
            + len_header(5, nbytes))  # BlobProto.data, packed floats follow


def write_caffemodel(path: str | Path, layers: Iterable[tuple[str, str, list[np.ndarray]]],
                     name: str = "") -> None:
    """Writes a NetParameter whose layers carry (name, type, blobs); atomically."""
    path = Path(path)
    tmp = path.with_name(path.name + ".partial")
    try:
        with open(tmp, "wb") as f:
            if name:
                f.write(proto.NetParameter(name=name).SerializeToString())
            for layer_name, layer_type, blobs in layers:
                head = proto.LayerParameter(name=layer_name, type=layer_type).SerializeToString()
                # ascontiguousarray makes 0-D blobs 1-D; Caffe keeps scalar blobs (Scale num_axes 0) 0-D
                arrays = [np.ascontiguousarray(b, dtype="<f4").reshape(np.shape(b)) for b in blobs]
                blob_msgs = []
                for a in arrays:
                    h = _blob_header(tuple(a.shape), a.nbytes)
                    blob_msgs.append((len_header(7, len(h) + a.nbytes) + h, a))  # LayerParameter.blobs
                size = len(head) + sum(len(h) + a.nbytes for h, a in blob_msgs)
                f.write(len_header(100, size) + head)  # NetParameter.layer
                for h, a in blob_msgs:
                    f.write(h)
                    f.write(memoryview(a).cast("B"))
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_net_weights(path: str | Path, net) -> None:
    """Writes the weights bound to a loaded ``Net`` (e.g. seeded random ones) as a caffemodel.

    Every layer is written, weightless ones too, so a net without weights still gives a
    caffemodel that Caffe and our loader accept.
    """
    write_caffemodel(path, ((l.name, l.type, list(l.weights)) for l in net.layers), net.name)
