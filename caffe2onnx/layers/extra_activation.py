"""Specs of the reference Caffe's extra element-wise layers: ReLU6, HardSwish, HardSigmoid."""
from __future__ import annotations

from dataclasses import dataclass

from .registry import SPECS, Inferred, Spec


def _same(params, shapes):
    return Inferred([shapes[0]], [])


@dataclass(frozen=True)
class ReLU6Params:
    negative_slope: float
    threshold: float


@SPECS.register
class ReLU6(Spec):
    """min(max(x, 0) + negative_slope * min(x, 0), threshold)."""

    type = "ReLU6"
    param = "relu6_param"
    fields = frozenset({"negative_slope", "threshold"})
    parse = staticmethod(lambda p, layer: ReLU6Params(p.negative_slope, p.threshold))
    infer = staticmethod(_same)


@SPECS.register
class HardSwish(Spec):
    """x * max(0, min(1, x / 6 + 0.5))."""

    type = "HardSwish"
    infer = staticmethod(_same)


@dataclass(frozen=True)
class HardSigmoidParams:
    alpha: float
    beta: float


@SPECS.register
class HardSigmoid(Spec):
    """max(0, min(1, alpha * x + beta))."""

    type = "HardSigmoid"
    param = "hardsigmoid_param"
    fields = frozenset({"alpha", "beta"})
    parse = staticmethod(lambda p, layer: HardSigmoidParams(p.alpha, p.beta))
    infer = staticmethod(_same)
