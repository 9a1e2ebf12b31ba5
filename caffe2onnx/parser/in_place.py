"""Where Caffe's in-place layers compute something other than the layer's formula.

Caffe runs a layer in place by writing into its bottom's memory. That is only
the formula's result when nothing else still reads that memory. Two ways it
can be read, both checked against real Caffe:

- the same blob version has other readers: Caffe then inserts a Split, the
  in-place layer reads a split copy, and Caffe refuses the net ("top blob
  produced by multiple sources");
- the version shares memory with other blobs (Caffe's Split, Flatten, Reshape,
  one-bottom Concat, one-top Slice and identity Permute alias their tops to their
  bottom): overwriting it changes those blobs too, and a later reader of them
  sees the in-place result. We refuse such nets rather than reproduce that.
"""
from __future__ import annotations

from ..errors import NetStructureError


def check_in_place(layers, per_layer: list[tuple[list[str], list[str]]], outputs: list[str], source: str) -> None:
    readers: dict[str, list[int]] = {}
    for i, (ins, _) in enumerate(per_layer):
        for t in ins:
            readers.setdefault(t, []).append(i)
    groups = _alias_groups(layers, per_layer)
    for i, (layer, (ins, _)) in enumerate(zip(layers, per_layer)):
        for j, top in enumerate(layer.top):
            if j >= len(layer.bottom) or layer.bottom[j] != top:
                continue
            head = f"{source}: layer '{layer.name}' (type {layer.type}) overwrites blob '{top}' in place"
            if len(readers[ins[j]]) > 1:
                raise NetStructureError(f"{head} while {len(readers[ins[j]]) - 1} other bottom(s) read the same "
                                        f"value; Caffe rejects this (top blob '{top}' produced by multiple sources)")
            late = [u for u in groups.get(ins[j], ()) if u != ins[j]
                    and (u in outputs or any(r > i for r in readers.get(u, ())))]
            if late:
                raise NetStructureError(
                    f"{head}, but in Caffe that memory is shared with blob(s) {sorted(late)} (Split, Flatten, "
                    "Reshape and similar layers alias their tops to their bottom), which are read afterwards: "
                    "Caffe would hand them the in-place result. Give the layer its own top.")


def _aliases_memory(layer) -> bool:
    if layer.type in ("Split", "Flatten", "Reshape"):
        return True
    if layer.type == "Concat":
        return len(layer.bottom) == 1
    if layer.type == "Slice":
        return len(layer.top) == 1
    if layer.type == "Permute":
        order = list(layer.permute_param.order)
        return order == list(range(len(order)))
    return False


def _alias_groups(layers, per_layer) -> dict[str, set[str]]:
    """Tensor name -> every tensor sharing its memory in Caffe (itself included)."""
    groups: dict[str, set[str]] = {}
    for layer, (ins, outs) in zip(layers, per_layer):
        if not _aliases_memory(layer):
            continue
        merged = set().union(*(groups.get(t, {t}) for t in (*ins, *outs)))
        for t in merged:
            groups[t] = merged
    return groups
