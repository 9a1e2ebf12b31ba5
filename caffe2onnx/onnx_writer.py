"""A built ONNX model whose weights stay numpy arrays until written.

``BuiltModel.save`` streams the protobuf wire format itself: the model
without weights is serialised by protobuf, then each weight is appended to the
graph as a TensorProto whose raw_data bytes go straight from numpy to the
file. Converting a 550 MB caffemodel then needs no extra copy of the weights.
``check`` validates the model with every weight declared as a graph input of
the same name, type and shape, so the checks cost no weight memory either.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from .errors import ConversionError
from .model_check import check_model
from .safe_io import atomic_output
from .wire import len_header

_PROTOBUF_LIMIT = 2**31 - 1  # protobuf cannot parse a message this large
_GRAPH_FIELD, _INITIALIZER_FIELD, _RAW_DATA_FIELD = 7, 5, 9  # ModelProto.graph, GraphProto.initializer, TensorProto.raw_data


@dataclass
class BuiltModel:
    model: onnx.ModelProto  # complete except for the weights
    weights: list[tuple[str, np.ndarray]]

    def to_proto(self) -> onnx.ModelProto:
        """The complete ModelProto (holds a second copy of the weights)."""
        full = onnx.ModelProto()
        full.CopyFrom(self.model)
        full.graph.initializer.extend(numpy_helper.from_array(a, n) for n, a in self.weights)
        return full

    def skeleton(self) -> onnx.ModelProto:
        """The model with each weight as a graph input instead of an initializer."""
        sk = onnx.ModelProto()
        sk.CopyFrom(self.model)
        sk.graph.input.extend(helper.make_tensor_value_info(n, TensorProto.FLOAT, list(a.shape))
                              for n, a in self.weights)
        return sk

    def check(self) -> None:
        check_model(self.skeleton())

    def save(self, path: str | Path) -> None:
        """Writes atomically: a failed or interrupted write leaves no partial file behind.

        An existing ``path`` that is not a regular file (a device, FIFO, directory) is refused.
        """
        size = self.model.ByteSize() + sum(a.size * 4 + len(n) + 32 for n, a in self.weights)
        if size >= _PROTOBUF_LIMIT:
            raise ConversionError(f"the ONNX model would be {size / 2**30:.2f} GiB, over protobuf's 2 GiB limit for "
                                  "one file; ONNX external data is not supported yet, so nothing was written")
        with atomic_output(Path(path)) as f:
            self._write(f)

    def _write(self, f: BinaryIO) -> None:
        head = onnx.ModelProto()
        head.CopyFrom(self.model)
        head.ClearField("graph")
        graph = self.model.graph.SerializeToString()
        entries = []
        for name, arr in self.weights:
            arr = np.ascontiguousarray(arr, dtype="<f4")
            meta = TensorProto(name=name, data_type=TensorProto.FLOAT, dims=arr.shape).SerializeToString()
            raw_header = len_header(_RAW_DATA_FIELD, arr.nbytes)
            prefix = len_header(_INITIALIZER_FIELD, len(meta) + len(raw_header) + arr.nbytes) + meta + raw_header
            entries.append((prefix, arr))
        graph_len = len(graph) + sum(len(p) + a.nbytes for p, a in entries)
        f.write(head.SerializeToString())
        f.write(len_header(_GRAPH_FIELD, graph_len))
        f.write(graph)
        for prefix, arr in entries:
            f.write(prefix)
            f.write(memoryview(arr).cast("B"))
