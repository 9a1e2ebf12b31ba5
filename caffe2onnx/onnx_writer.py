"""A built ONNX model whose weights stay numpy arrays until written.

``BuiltModel.save`` streams the protobuf wire format itself (weight_io.py): the
model without weights is serialised by protobuf, then each weight is appended
to the graph as a TensorProto whose raw_data bytes are spliced from the
caffemodel file to the output in the kernel, or written from numpy (computed
constants). Converting a 550 MB caffemodel needs no copy of the weights in
memory. Above protobuf's 2 GiB limit the weights go to ``<out>.data``
(ONNX external data) along the same path.
``check`` validates the model with every weight declared as a graph input of
the same name, type and shape, so the checks cost no weight memory either.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Callable

import numpy as np
from . import onnx_lite as onnx
from .onnx_lite import TensorProto, helper, numpy_helper  # not `import onnx`: see onnx_lite

from .errors import ConversionError
from .model_check import check_model
from .safe_io import atomic_output
from .weight_io import DATA_SUFFIX, Progress, write_external, write_single

_PROTOBUF_LIMIT = 2**31 - 1  # protobuf cannot parse a message this large


@dataclass
class BuiltModel:
    model: onnx.ModelProto  # complete except for the weights
    weights: list[tuple[str, np.ndarray]]
    node_counts: tuple[int, int] | None = None  # ONNX nodes as mapped, and after the rewrites
    # Fields known only once the weights are written (the doc_string with the sources' sha256,
    # model_info.stamp_fields): appended after the graph, which protobuf merges as if in place.
    trailer: Callable[[], onnx.ModelProto] | None = None

    def to_proto(self) -> onnx.ModelProto:
        """The complete ModelProto (holds a second copy of the weights)."""
        full = onnx.ModelProto()
        full.CopyFrom(self.model)
        full.graph.initializer.extend(numpy_helper.from_array(a, n) for n, a in self.weights)
        if self.trailer is not None:
            full.MergeFrom(self.trailer())
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

    def byte_size(self) -> int:
        """The size of the single-file ONNX model, computed without serialising the weights."""
        return self.model.ByteSize() + sum(a.size * 4 + len(n) + 32 for n, a in self.weights)

    def needs_external_data(self) -> bool:
        """True when one file would pass protobuf's 2 GiB limit."""
        return self.byte_size() >= _PROTOBUF_LIMIT

    def save_checked(self, path: str | Path, external_data: bool | None = None,
                     progress: Progress | None = None) -> None:
        """check() and save() at once: the checks run in a thread while the kernel copies the
        weights, and the file appears only if they pass."""
        with ThreadPoolExecutor(1) as pool:
            checked = pool.submit(self.check)
            self.save(path, external_data, progress, before_commit=checked.result)

    def save(self, path: str | Path, external_data: bool | None = None, progress: Progress | None = None,
             before_commit: Callable[[], object] | None = None) -> None:
        """Writes atomically: a failed or interrupted write leaves no partial file behind.

        An existing ``path`` that is not a regular file (a device, FIFO, directory) is refused.
        ``external_data``: weights in ``<path>.data`` (ONNX external data); None chooses it
        exactly when one file would pass protobuf's 2 GiB limit. ``before_commit`` runs (and may
        raise) after writing, before the file takes its name.
        """
        if external_data is None:
            external_data = self.needs_external_data()
        elif not external_data and self.needs_external_data():
            raise ConversionError(f"the ONNX model would be {self.byte_size() / 2**30:.2f} GiB, over protobuf's "
                                  "2 GiB limit for one file; use external data (--external-data), nothing was written")
        path = Path(path)
        with atomic_output(path) as f:
            if not external_data:
                self._write(f, progress)
                if before_commit is not None:
                    before_commit()
                return
            data_path = path.with_name(path.name + DATA_SUFFIX)
            with atomic_output(data_path) as d:  # renamed first: the model never names missing data
                write_external(self, f, d, data_path.name, progress)
                if before_commit is not None:
                    before_commit()

    def _write(self, f: BinaryIO, progress: Progress | None = None) -> None:
        write_single(self, f, progress)
