"""Identity nodes (Dropout, Split, in-place copies) removed; their tensors become aliases."""
from __future__ import annotations

from ..onnx_lite import helper

from . import Graph


def drop_identities(g: Graph) -> Graph:
    """Every Identity goes: its consumers read its input, or, when its output is a graph
    output, the input's producer writes that output directly. Only a copy of a graph
    input straight to a graph output stays."""
    renamed: dict[str, str] = {}  # tensor -> the tensor that now carries its value

    def cur(t: str) -> str:
        while t in renamed:
            t = renamed[t]
        return t

    produced = {o for n in g.nodes for o in n.output}
    outputs = set(g.outputs)
    dropped = set()
    for i, n in enumerate(g.nodes):
        if n.op_type != "Identity" or n.domain not in ("", "ai.onnx"):
            continue
        a, b = cur(n.input[0]), n.output[0]
        if a not in produced and a not in g.inputs:  # an initializer: no node could write b instead
            continue
        if b not in outputs:
            renamed[b] = a  # consumers of b read a
        elif a in produced and a not in outputs and a not in g.inputs:
            renamed[a] = b  # a's producer writes b; a's other consumers read b
            outputs.discard(a)
        else:
            continue
        dropped.add(i)
    if not dropped:
        return g
    nodes = []
    for i, n in enumerate(g.nodes):
        if i in dropped:
            continue
        ins, outs = [cur(t) for t in n.input], [cur(t) for t in n.output]
        if ins != list(n.input) or outs != list(n.output):
            m = helper.make_node(n.op_type, ins, outs, name=n.name, domain=n.domain or None)
            m.attribute.extend(n.attribute)
            n = m
        nodes.append(n)
    aliases = {k: cur(v) for k, v in g.aliases.items()}
    aliases.update({t: cur(t) for t in renamed})
    return g.with_(nodes=tuple(nodes), aliases=aliases)
