"""Rewrites, each a pure function: of the loaded ``Net`` before mapping
(``detection.without_detection_output``: ``--no-detection-output``), and of the
ONNX graph after mapping (``Graph -> Graph``).

The mappings emit one Caffe layer at a time; these passes see the whole graph
and make it lean for runtimes without changing its numbers beyond rounding:

* ``identities.drop_identities``: Dropout, Split, in-place copies leave no node;
  each removed tensor is recorded as an alias of the tensor it equals, so the
  validators still compare every Caffe blob (``resolve_aliases``).
* ``lrn.decompose_lrn``: ACROSS_CHANNELS LRN as a channel-window AveragePool and
  element-wise ops, which onnxruntime's CPU runs 2-2.5x faster than its LRN kernel.
* ``fold.fold_affine`` (``--fold``): per-channel Mul/Add (BatchNorm, Scale, Bias)
  folded into the preceding Conv/Gemm weights.
* ``preprocess.bake_preprocess`` (``--mean/--scale/--input-order/--input-layout/--input-dtype``):
  the raw image in, Caffe's input preprocessing in the graph.

The converter reports node counts before and after.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from typing import Mapping

import numpy as np

from .detection import without_detection_output

__all__ = ["ALIASES_KEY", "Graph", "rewrite", "resolve_aliases", "without_detection_output"]

ALIASES_KEY = "caffe2onnx.aliases"  # model metadata: JSON {removed tensor: tensor holding its value}


@dataclass(frozen=True)
class Graph:
    """What the rewrites see: nodes in order, constants, weights, graph inputs/outputs, tensor shapes."""

    nodes: tuple  # onnx.NodeProto, never mutated
    constants: tuple  # small onnx.TensorProto initializers
    weights: tuple  # (name, np.ndarray): large initializers, written by weight_io
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    shapes: Mapping[str, tuple] = field(default_factory=dict)  # Caffe shapes (batch may be symbolic)
    aliases: Mapping[str, str] = field(default_factory=dict)
    opset: int = 17

    def with_(self, **changes) -> "Graph":
        return replace(self, **changes)

    def producers(self) -> dict[str, int]:
        return {o: i for i, n in enumerate(self.nodes) for o in n.output}

    def consumers(self) -> dict[str, list[int]]:
        out: dict[str, list[int]] = {}
        for i, n in enumerate(self.nodes):
            for t in n.input:
                out.setdefault(t, []).append(i)
        return out

    def names(self) -> set[str]:
        """Every tensor name in use: node inputs and outputs, constants, weights."""
        return {t for n in self.nodes for t in (*n.input, *n.output)} | {c.name for c in self.constants} \
            | {w for w, _ in self.weights}

    def weight(self, name: str) -> np.ndarray | None:
        for n, a in self.weights:
            if n == name:
                return a
        return None


def rewrite(net, g, opset: int, batch: str | None, *, lean: bool = True, fold: bool = False, preprocess=None):
    """The converter's entry: a GraphBuilder's nodes, constants and weights for ``net``, rewritten;
    returns (nodes, constants, weights, aliases)."""
    shapes = {n: (batch, *t.shape[1:]) if batch and t.shape else tuple(t.shape) for n, t in net.tensors.items()}
    graph = Graph(tuple(g.nodes), tuple(g.initializers), tuple(g.weights), tuple(net.inputs), tuple(net.outputs),
                  shapes, opset=opset)
    if lean:
        graph = drop_identities_and_lrn(graph)
    if fold:
        graph = fold_affine(graph)
    if preprocess is not None:  # last: the passes above see the net's own input
        from .preprocess import bake_preprocess
        graph = bake_preprocess(graph, preprocess)
    return list(graph.nodes), list(graph.constants), list(graph.weights), dict(graph.aliases)


def drop_identities_and_lrn(graph: Graph) -> Graph:
    """The default passes: no Identity nodes, LRN in its fastest exact form."""
    from .identities import drop_identities
    from .lrn import decompose_lrn
    return decompose_lrn(drop_identities(graph))


def fold_affine(graph: Graph) -> Graph:
    """``--fold``: per-channel Mul/Add folded into the preceding Conv/Gemm (see fold.py)."""
    from .fold import fold_affine as fold
    return fold(graph)


def unique_name(base: str, taken: set[str]) -> str:
    """``base``, else ``base_2``, ``base_3``, ...: the first not in ``taken``, which it then joins."""
    name, k = base, 1
    while name in taken:
        k += 1
        name = f"{base}_{k}"
    taken.add(name)
    return name


def aliases_json(aliases: Mapping[str, str]) -> str:
    return json.dumps(dict(sorted(aliases.items())), separators=(",", ":"))


def model_aliases(model) -> dict[str, str]:
    """The alias table a converted model carries in its metadata ({} if none)."""
    for p in model.metadata_props:
        if p.key == ALIASES_KEY:
            return json.loads(p.value)
    return {}


def resolve_aliases(model, values: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """``values`` plus every removed tensor, as the value of the tensor it equals."""
    out = dict(values)
    for removed, kept in model_aliases(model).items():
        if kept in out and removed not in out:
            out[removed] = out[kept]
    return out
