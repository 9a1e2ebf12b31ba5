"""NetStateRule filtering exactly as Caffe's Net::FilterNet / StateMeetsRule."""
from __future__ import annotations

from dataclasses import dataclass

from ..errors import NetStructureError

TRAIN, TEST = 0, 1


@dataclass(frozen=True)
class State:
    phase: int
    level: int
    stages: frozenset[str]


def meets_rule(state: State, rule) -> bool:
    if rule.HasField("phase") and rule.phase != state.phase:
        return False
    if rule.HasField("min_level") and state.level < rule.min_level:
        return False
    if rule.HasField("max_level") and state.level > rule.max_level:
        return False
    if any(s not in state.stages for s in rule.stage):
        return False
    return not any(s in state.stages for s in rule.not_stage)


def included(state: State, layer) -> bool:
    if len(layer.include) and len(layer.exclude):
        raise NetStructureError(f"layer '{layer.name}' (type {layer.type}): specify either include "
                                "or exclude rules, not both (Caffe refuses this too)")
    if len(layer.include):
        return any(meets_rule(state, r) for r in layer.include)
    return not any(meets_rule(state, r) for r in layer.exclude)
