"""``--fold``: per-channel Mul/Add after a Conv or Gemm folded into its weights and bias.

BatchNorm, Scale and Bias map to Mul/Add with per-channel constants; when one
directly follows a Conv (or an InnerProduct's Gemm) whose output nothing else
reads, y = (W*x + b) * s + c = (W*s)*x + (b*s + c). The new weights are computed
in float64 and rounded once to float32, so the only change to the numbers is the
order of rounding (parity-tested against real Caffe). The folded-away tensors
(the Conv's own output, BatchNorm's before Scale) no longer exist in the model.
"""
from __future__ import annotations

import numpy as np
from ..onnx_lite import helper

from . import Graph


def fold_affine(g: Graph) -> Graph:
    """Folds until no Conv/Gemm -> Mul/Add-by-constant pair is left."""
    while True:
        folded = _fold_one(g)
        if folded is None:
            return g
        g = folded


def _uses(g: Graph) -> dict[str, int]:
    count: dict[str, int] = {}
    for n in g.nodes:
        for t in n.input:
            count[t] = count.get(t, 0) + 1
    return count


def _fold_one(g: Graph) -> Graph | None:
    producers, consumers, uses = g.producers(), g.consumers(), _uses(g)
    weights = dict(g.weights)
    for j, n in enumerate(g.nodes):
        if n.op_type not in ("Mul", "Add") or len(n.input) != 2:
            continue
        t, k = (n.input[0], n.input[1]) if n.input[1] in weights else (n.input[1], n.input[0])
        if k not in weights or t in g.outputs or len(consumers.get(t, [])) != 1 or t not in producers:
            continue
        i = producers[t]
        p = g.nodes[i]
        channels = _channel_axis_ok(p, weights, uses)
        if channels is None:
            continue
        s = _per_channel(np.asarray(weights[k], np.float64), channels, 2 if p.op_type == "Gemm" else
                         np.ndim(weights[p.input[1]]))
        if s is None:
            continue
        return _apply(g, i, j, n.op_type, s, weights, t)
    return None


def _per_channel(s: np.ndarray, channels: int, rank: int) -> np.ndarray | None:
    """s as one value per output channel, if it broadcasts over the output that way; else None."""
    if s.ndim > rank:
        return None
    full = (1,) * (rank - s.ndim) + s.shape
    if s.size == 1:
        return np.full(channels, float(s.reshape(-1)[0]))
    if full[1] != channels or any(d != 1 for k, d in enumerate(full) if k != 1):
        return None
    return s.reshape(-1)


def _channel_axis_ok(p, weights, uses) -> int | None:
    """Output channels of a Conv / 2-D Gemm whose weights are used by it alone; else None."""
    if p.op_type == "Conv":
        w = weights.get(p.input[1])
    elif p.op_type == "Gemm":
        attrs = {a.name: helper.get_attribute_value(a) for a in p.attribute}
        if attrs.get("alpha", 1.0) != 1.0 or attrs.get("beta", 1.0) != 1.0 or attrs.get("transA", 0):
            return None
        w = weights.get(p.input[1])
    else:
        return None
    if w is None or any(uses.get(x, 0) != 1 for x in p.input[1:]):
        return None
    if len(p.input) > 2 and p.input[2] not in weights:
        return None
    if p.op_type == "Gemm":
        trans_b = {a.name: helper.get_attribute_value(a) for a in p.attribute}.get("transB", 0)
        return w.shape[0] if trans_b else w.shape[1]
    return w.shape[0]


def _apply(g: Graph, i: int, j: int, op: str, s: np.ndarray, weights, t: str) -> Graph:
    p, n = g.nodes[i], g.nodes[j]
    w = np.asarray(weights[p.input[1]], np.float64)
    b = np.asarray(weights[p.input[2]], np.float64).reshape(-1) if len(p.input) > 2 else np.zeros(len(s))
    if op == "Mul":
        if p.op_type == "Gemm" and not _trans_b(p):
            w = w * s[None, :]
        else:
            w = w * s.reshape(-1, *([1] * (w.ndim - 1)))
        b = b * s
    else:
        b = b + s
    new_w = dict(g.weights)
    new_w[p.input[1]] = w.astype(np.float32)
    bias = p.input[2] if len(p.input) > 2 else f"{p.name}/folded_bias"
    new_w[bias] = b.astype(np.float32)
    fused = helper.make_node(p.op_type, [p.input[0], p.input[1], bias], list(n.output), name=p.name)
    fused.attribute.extend(p.attribute)
    nodes = [fused if k == i else m for k, m in enumerate(g.nodes) if k != j]
    kept = {x for m in nodes for x in m.input}
    weights_out = tuple((name, a) for name, a in new_w.items() if name in kept)
    aliases = {a: v for a, v in g.aliases.items() if v != t}  # t's value exists no more
    return g.with_(nodes=tuple(nodes), weights=weights_out, aliases=aliases)


def _trans_b(p) -> bool:
    return bool({a.name: helper.get_attribute_value(a) for a in p.attribute}.get("transB", 0))
