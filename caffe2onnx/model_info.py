"""What a written model says about itself: its sources, how it was read, and how to check it again.

``convert`` stamps a ``doc_string`` (the source files and their sha256) and ``metadata_props``
under the ``caffe2onnx.`` prefix; ``validate`` reads them back so that it needs no shape,
phase or seed flags for a model converted by caffe2onnx. Values are strings (ONNX's rule);
structured ones are JSON.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from .digest import SourceDigests, sha256_file
from .onnx_lite import ModelProto, StringStringEntryProto

PREFIX = "caffe2onnx."
# keys this module writes (the graph rewrites add "caffe2onnx.aliases" themselves)
# (baked preprocessing is recorded by rewrites/preprocess.py under "caffe2onnx.preprocess.")
KEYS = ("source_net", "source_weights", "phase", "stages", "level", "input_shapes", "random_weights_seed")
def describe(net, *, prototxt: str | Path | None, caffemodel: str | Path | None, phase: int | str | None = None,
             stages: Sequence[str] = (), level: int = 0, random_weights: int | None = None,
             digests: SourceDigests | None = None) -> dict[str, Any]:
    """The facts of one conversion, keyed as in KEYS (None values are left out)."""
    if isinstance(phase, int):  # caffe_pb2.Phase: TRAIN = 0, TEST = 1
        phase = ("TRAIN", "TEST")[phase] if phase in (0, 1) else str(phase)
    digest = digests.get if digests is not None else sha256_file
    info: dict[str, Any] = {
        "source_net": _source(prototxt, digest), "source_weights": _source(caffemodel, digest),
        "phase": phase, "stages": list(stages), "level": level,
        "input_shapes": {n: list(net.shape(n)) for n in net.inputs},
        "random_weights_seed": random_weights}
    return {k: v for k, v in info.items() if v is not None}


def _source(path: str | Path | None, digest: Callable[[str | Path], str | None]) -> dict[str, str] | None:
    return None if path is None else {"file": Path(path).name, "sha256": digest(path)}


def doc_string(info: Mapping[str, Any]) -> str:
    from . import __version__
    parts = [f"{what} {s['file']} (sha256 {s['sha256']})" for what, s in
             (("net", info.get("source_net")), ("weights", info.get("source_weights"))) if s]
    if "random_weights_seed" in info:
        parts.append(f"seeded random weights (seed {info['random_weights_seed']})")
    return f"Converted from Caffe by caffe2onnx {__version__}: " + ", ".join(parts or ["an in-memory net"])


def stamp(model, info: Mapping[str, Any]) -> None:
    """Writes ``info`` as the model's doc_string and metadata_props (other props are kept)."""
    keep = [p for p in model.metadata_props if not (p.key.startswith(PREFIX) and p.key[len(PREFIX):] in KEYS)]
    del model.metadata_props[:]
    model.metadata_props.extend(keep)
    model.MergeFrom(stamp_fields(info))


def stamp_fields(info: Mapping[str, Any]) -> ModelProto:
    """A ModelProto holding only the doc_string and metadata_props ``stamp`` writes.

    Serialised after a model without them it makes the stamped model: protobuf merges fields in
    whatever order they come, so a writer can append it once the sources' hashes are known.
    """
    fields = ModelProto(doc_string=doc_string(info))
    fields.metadata_props.extend(StringStringEntryProto(key=PREFIX + k, value=v if isinstance(v, str) else
                                                        json.dumps(v, sort_keys=True)) for k, v in info.items())
    return fields


def stamp_after_weights(built, net, digests: SourceDigests, **facts) -> None:
    """Makes ``built``'s stamp (describe(net, **facts)) its trailer: the writer appends it after the
    weights, by which time ``digests`` has hashed the sources beside the copy."""
    built.trailer = lambda: stamp_fields(describe(net, digests=digests, **facts))


def read_info(model) -> dict[str, Any]:
    """The stamped facts of a ModelProto (or an .onnx path; {} if unreadable or not ours)."""
    if not hasattr(model, "metadata_props"):
        model = _load_skeleton(model)
        if model is None:
            return {}
    out: dict[str, Any] = {}
    for p in model.metadata_props:
        key = p.key[len(PREFIX):]
        if p.key.startswith(PREFIX) and key in KEYS:
            try:
                out[key] = p.value if key == "phase" else json.loads(p.value)
            except ValueError:  # hand-edited metadata: ignored rather than trusted half-way
                continue
    return out


def _load_skeleton(path):
    from .errors import InputFileError
    from .onnx_lite import ModelProto
    from .safe_io import MAX_ONNX_BYTES, read_input_bytes
    try:
        model = ModelProto()
        model.ParseFromString(read_input_bytes(path, "ONNX model", MAX_ONNX_BYTES))
        return model
    except (InputFileError, Exception):
        return None


def graph_input_shapes(model) -> dict[str, list[int | None]]:
    """Each graph input's dims as stored (None: a symbolic or unknown dim)."""
    inits = {i.name for i in model.graph.initializer}
    return {vi.name: [d.dim_value if d.HasField("dim_value") else None for d in vi.type.tensor_type.shape.dim]
            for vi in model.graph.input if vi.name not in inits}


def check_shapes(model, batch: int | None = None) -> dict[str, tuple[int, ...]]:
    """Caffe input shapes to check ``model`` at: the ones convert used (recorded), else the graph
    inputs'; an input whose batch is symbolic in the model gets ``batch`` (default 1)."""
    recorded = read_info(model).get("input_shapes") or {}
    graph = graph_input_shapes(model)
    shapes: dict[str, tuple[int, ...]] = {}
    for name in recorded or graph:
        dims = list(recorded.get(name) or graph[name])
        symbolic = name in graph and bool(graph[name]) and graph[name][0] is None
        if dims and (symbolic or dims[0] is None):
            dims[0] = batch or 1
        if all(isinstance(d, int) and d > 0 for d in dims):  # an unknown inner dim: left to the net
            shapes[name] = tuple(dims)
    return shapes
