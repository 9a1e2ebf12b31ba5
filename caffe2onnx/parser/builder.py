"""Builds the normalised ``Net`` from an upgraded NetParameter and optional weights."""
from __future__ import annotations

import dataclasses

from types import MappingProxyType
from typing import Mapping, Sequence

import numpy as np

from .. import proto
from ..errors import (NetStructureError, ResourceLimitError, ShapeError, UnsupportedLayerError, WeightMismatchError,
                      summarize)
from ..ir import Layer, Net, Shape, Tensor
from ..layers import SPECS
from .caffemodel import RawBlob
from .data_layers import DATA_LAYERS, data_input_shapes, is_data_layer
from .in_place import check_in_place
from .random_weights import random_blobs
from .rules import State, included
from .upgrade import check_dims

__all__ = ["DATA_LAYERS", "TRAINING_ONLY", "build_net"]

# Random weights are generated only up to what one ONNX file can hold (protobuf's limit),
# checked layer by layer before each layer's weights are generated.
MAX_RANDOM_WEIGHT_BYTES = 2**31 - 1

# Layers that score training; none of them computes anything at inference. Data layers
# (data_layers.py) become graph inputs; their label tops, read only by these, go with them.
TRAINING_ONLY = frozenset({
    "SoftmaxWithLoss", "EuclideanLoss", "SigmoidCrossEntropyLoss", "HingeLoss", "InfogainLoss",
    "MultinomialLogisticLoss", "ContrastiveLoss", "Accuracy", "MultiBoxLoss", "DetectionEvaluate",
    "Silence", "HDF5Output",
})


def build_net(param, state: State, weights: Mapping[str, list[RawBlob]] | None,
              input_shapes: Mapping[str, Sequence[int]] | None, random_seed: int | None,
              source: str) -> Net:
    layers = [l for l in param.layer if included(state, l)]
    data_layers = [l for l in layers if is_data_layer(l)]
    data_tops = {t for l in data_layers for t in l.top}
    layers = [l for l in layers if not is_data_layer(l) and l.type not in TRAINING_ONLY]
    if not layers:
        raise NetStructureError(f"{source}: no layers left in this phase")
    parsed = _preflight(layers)
    names = _tensor_names(layers, data_tops, source)
    shapes = _input_shapes(layers, parsed, names, data_layers, weights, input_shapes or {}, source)
    rng = np.random.default_rng(random_seed) if random_seed is not None else None
    tensors: dict[str, Tensor] = {n: Tensor(n, s, n, None) for n, s in shapes.items()}
    out_layers, weight_problems = [], []
    random_bytes = 0
    for layer, params, (ins, outs) in zip(layers, parsed, names.per_layer):
        if layer.type == "Input":
            continue
        in_shapes = [tensors[t].shape for t in ins]
        inferred = SPECS.infer(layer.name, layer.type, params, in_shapes)
        for t, b, s in zip(outs, layer.top, inferred.outputs):
            tensors[t] = Tensor(t, check_dims(t, s, "blob"), b, layer.name)
        wshapes = tuple(tuple(s) for s in inferred.weights)
        for s in wshapes:
            check_dims(layer.name, s, "weight")
        blobs: tuple[np.ndarray, ...] = ()
        if rng is not None:
            random_bytes += 4 * sum(int(np.prod(s, dtype=np.int64)) for s in wshapes)
            if random_bytes > MAX_RANDOM_WEIGHT_BYTES:
                raise ResourceLimitError(
                    f"random weights up to layer '{layer.name}' (type {layer.type}) would need "
                    f"{random_bytes / 2**30:.2f} GiB, over the {MAX_RANDOM_WEIGHT_BYTES / 2**30:.0f} GiB one ONNX "
                    "file can hold; nothing was generated past that layer")
            blobs = tuple(random_blobs(rng, layer.type, list(wshapes)))
        elif weights is not None:
            blobs, problem = _bind(layer, wshapes, weights.get(layer.name))
            if problem:
                weight_problems.append(problem)
        out_layers.append(Layer(
            name=layer.name, type=layer.type, inputs=tuple(ins), outputs=tuple(outs),
            params=inferred.params if inferred.params is not None else params,
            weights=blobs, weight_shapes=wshapes,
            input_shapes=tuple(in_shapes), output_shapes=tuple(tensors[t].shape for t in outs),
            bottoms=tuple(layer.bottom), tops=tuple(layer.top)))
    out_layers = _share_params([l for l in layers if l.type != "Input"], out_layers, last_wins=rng is None)
    if weight_problems:
        raise WeightMismatchError(f"{len(weight_problems)} layer(s) do not fit the caffemodel: "
                                  + summarize(weight_problems))
    for blob in names.inputs:
        tensors.setdefault(blob, Tensor(blob, shapes[blob], blob, None))
    return Net(name=param.name, inputs=tuple(names.inputs), outputs=tuple(names.outputs),
               layers=tuple(out_layers), tensors=MappingProxyType(tensors),
               reference_net=_reference_net(param.name, layers, names.inputs, shapes))


def _share_params(raw_layers, out_layers: list[Layer], last_wins: bool) -> list[Layer]:
    """Caffe's weight sharing: layers naming the same ``param { name }`` use one blob.

    From a caffemodel every sharer's copy is loaded into that one blob, so the last layer's
    copy wins (Net::CopyTrainedLayersFrom); random weights are the first sharer's.
    """
    owners: dict[str, tuple[str, np.ndarray]] = {}
    for raw, layer in zip(raw_layers, out_layers):
        for i, spec in enumerate(raw.param[:len(layer.weights)]):
            if not spec.name:
                continue
            blob = layer.weights[i]
            if spec.name in owners:
                owner, first = owners[spec.name]
                if first.shape != blob.shape:  # Caffe's STRICT share mode (PERMISSIVE: the counts)
                    if spec.share_mode != 1 or first.size != blob.size:
                        raise NetStructureError(
                            f"layer '{layer.name}' (type {layer.type}) shares param '{spec.name}' with layer "
                            f"'{owner}', but its blob {i} has shape {list(blob.shape)}, not {list(first.shape)}")
                if not last_wins:
                    continue
            owners[spec.name] = (layer.name, blob)
    if not owners:
        return out_layers
    out = []
    for raw, layer in zip(raw_layers, out_layers):
        names = [spec.name for spec in raw.param[:len(layer.weights)]]
        if any(names):
            weights = tuple(owners[n][1].reshape(w.shape) if n else w for n, w in zip(names, layer.weights))
            layer = dataclasses.replace(layer, weights=weights + layer.weights[len(names):])
        out.append(layer)
    return out


def _reference_net(name: str, layers, inputs: list[str], shapes: Mapping[str, Shape]) -> bytes:
    """The layers we convert, rules cleared, behind one Input layer of the shapes used."""
    ref = proto.current().NetParameter(name=name)  # the schema the layers were read with
    kept = {l.name for l in layers}
    head = ref.layer.add(type="Input", name=_fresh("caffe2onnx_input", set(kept)))
    for blob in inputs:
        head.top.append(blob)
        head.input_param.shape.add().dim.extend(shapes[blob])
    for layer in layers:
        if layer.type != "Input":
            copy = ref.layer.add()
            copy.CopyFrom(layer)
            copy.ClearField("include")
            copy.ClearField("exclude")
            SPECS.get(layer.type).caffe_form(copy)
    return ref.SerializeToString()


def _preflight(layers) -> list:
    """Parses every layer's parameters, reporting all unsupported types and fields at once."""
    problems, parsed = [], []
    for layer in layers:
        found = SPECS.problems(layer)
        params = None
        if not found:
            try:
                params = SPECS.parse(layer)
            except UnsupportedLayerError as e:
                found = e.problems
        problems += found
        parsed.append(params)
    if problems:
        raise UnsupportedLayerError(problems)
    return parsed


class _Names:
    def __init__(self) -> None:
        self.per_layer: list[tuple[list[str], list[str]]] = []
        self.inputs: list[str] = []
        self.outputs: list[str] = []


def _tensor_names(layers, data_tops: set[str], source: str) -> _Names:
    """Checks Caffe's blob rules and gives every blob version a unique tensor name.

    The last version of a blob keeps the Caffe blob name (so graph outputs and the
    blobs users know keep theirs); a version that an in-place layer later overwrites
    is named ``blob@layer`` after the layer that produced it. Net inputs keep their names.
    """
    last_writer: dict[str, int] = {}
    produced_at: dict[str, int] = {}
    for i, layer in enumerate(layers):
        for t in layer.top:
            last_writer[t] = i
            produced_at.setdefault(t, i)
    names = _Names()
    used = set(last_writer) | data_tops
    current: dict[str, str] = {}
    available: set[str] = set()
    for i, layer in enumerate(layers):
        ins = []
        for b in layer.bottom:
            if b not in current:
                if b in data_tops:
                    current[b] = b
                    names.inputs.append(b)
                elif b in produced_at:
                    raise NetStructureError(
                        f"{source}: layer '{layer.name}' (type {layer.type}) reads blob '{b}' before layer "
                        f"'{layers[produced_at[b]].name}' produces it (Caffe runs layers in order; "
                        "a cycle or misordered net)")
                else:
                    raise NetStructureError(f"{source}: layer '{layer.name}' (type {layer.type}) has bottom "
                                            f"'{b}', which no layer produces")
            ins.append(current[b])
            available.discard(b)
        outs = []
        seen_tops = set()
        for j, t in enumerate(layer.top):
            in_place = j < len(layer.bottom) and layer.bottom[j] == t
            if t in seen_tops or (t in current and not in_place):
                raise NetStructureError(f"{source}: top blob '{t}' of layer '{layer.name}' (type "
                                        f"{layer.type}) is produced by multiple sources")
            seen_tops.add(t)
            is_input = layer.type == "Input"
            if is_input or (last_writer[t] == i and t not in names.inputs):
                name = t
            else:
                name = _fresh(f"{t}@{layer.name}", used)
            if is_input:
                names.inputs.append(t)
            current[t] = name
            outs.append(name)
            available.add(t)
        names.per_layer.append((ins, outs))
    names.outputs = [current[b] for b in sorted(available)]  # Caffe reports a std::set
    check_in_place(layers, names.per_layer, names.outputs, source)
    return names


def _fresh(name: str, used: set[str]) -> str:
    candidate, k = name, 1
    while candidate in used:
        k += 1
        candidate = f"{name}#{k}"
    used.add(candidate)
    return candidate


def _input_shapes(layers, parsed, names: _Names, data_layers, weights, given, source: str) -> dict[str, Shape]:
    """Shapes of the net inputs: given ones win, then Input layers, then what data layers state."""
    shapes: dict[str, Shape] = {}
    for layer, params in zip(layers, parsed):
        if layer.type == "Input":
            for top, shape in zip(layer.top, params.shapes):
                shapes[top] = shape
    unknown = sorted(set(given) - set(names.inputs))
    if unknown:
        raise ShapeError(f"input shape given for {unknown}, but the net's inputs are {names.inputs}")
    readers: dict[str, object] = {}
    for layer in layers:
        for b in layer.bottom:
            readers.setdefault(b, layer)
    stated, why = data_input_shapes(data_layers, names.inputs, readers, weights, given)
    shapes.update(stated)
    missing = []
    for name in names.inputs:
        if name in given:
            shapes[name] = tuple(int(d) for d in given[name])
        elif name not in shapes:
            missing.append(name)
    if missing:
        first = missing[0]
        example = why[first][1] if first in why else "1,3,224,224"
        raise ShapeError(f"{source}: no shape for input(s) "
                         + ", ".join(f"'{n}' ({why[n][0] if n in why else 'declared without a shape'})"
                                     for n in missing)
                         + f"; give them, e.g. input_shapes={{'{first}': ({example})}} "
                         f"or --input-shape {first}={example}")
    return {n: check_dims(n, shapes[n]) for n in names.inputs}


def _bind(layer, wshapes: tuple[Shape, ...], blobs: list[RawBlob] | None):
    """Caffe's CopyTrainedLayersFrom check for one layer: count, then shapes (legacy aware)."""
    head = f"layer '{layer.name}' (type {layer.type})"
    if blobs is None:
        if wshapes:
            return (), f"{head}: no weights in the caffemodel (needs {[list(s) for s in wshapes]})"
        return (), None
    if len(blobs) != len(wshapes):
        return (), (f"{head}: caffemodel has {len(blobs)} blob(s) "
                    f"{[list(_stored_shape(b)) for b in blobs]}, the layer needs {len(wshapes)} "
                    f"{[list(s) for s in wshapes]}")
    out = []
    for i, (blob, want) in enumerate(zip(blobs, wshapes)):
        stored = _stored_shape(blob)
        fits = stored == want
        if blob.legacy is not None:  # Caffe compares legacy shapes padded to 4 axes with leading 1s
            fits = len(want) <= 4 and (1,) * (4 - len(want)) + want == blob.legacy
        if not fits:
            return (), (f"{head}: blob {i} has shape {list(stored)} in the caffemodel, "
                        f"the layer needs {list(want)}")
        n = int(np.prod(want, dtype=np.int64))
        if blob.data.size != n:
            return (), (f"{head}: blob {i} holds {blob.data.size} values, its shape {list(want)} "
                        f"needs {n}")
        arr = blob.data.reshape(want)
        arr.flags.writeable = False
        out.append(arr)
    return tuple(out), None


def _stored_shape(blob: RawBlob) -> tuple[int, ...]:
    return blob.legacy if blob.legacy is not None else (blob.shape or ())
