"""Specs of the element-wise layers: output shape = input shape."""
from __future__ import annotations

from dataclasses import dataclass

from .registry import SPECS, Inferred, LayerProblem, Spec


def _same(params, shapes):
    return Inferred([shapes[0]], [])


def _simple(type_name: str, doc: str) -> None:
    SPECS.register(type(type_name, (Spec,), {"type": type_name, "__doc__": doc, "infer": staticmethod(_same)}))


_simple("Sigmoid", "1 / (1 + exp(-x)).")
_simple("TanH", "tanh(x).")
_simple("AbsVal", "|x|.")
_simple("BNLL", "log(1 + exp(x)), computed as x + log(1 + exp(-x)) for x > 0.")


@dataclass(frozen=True)
class ReLUParams:
    negative_slope: float


@SPECS.register
class ReLU(Spec):
    """max(x, 0) + negative_slope * min(x, 0)."""

    type = "ReLU"
    param = "relu_param"
    fields = frozenset({"negative_slope"})
    parse = staticmethod(lambda p, layer: ReLUParams(p.negative_slope))
    infer = staticmethod(_same)


@dataclass(frozen=True)
class DropoutParams:
    ratio: float


@SPECS.register
class Dropout(Spec):
    """Identity at TEST time (Caffe scales during training, not at inference)."""

    type = "Dropout"
    param = "dropout_param"
    fields = frozenset({"dropout_ratio"})
    parse = staticmethod(lambda p, layer: DropoutParams(p.dropout_ratio))
    infer = staticmethod(_same)


@dataclass(frozen=True)
class ELUParams:
    alpha: float


@SPECS.register
class ELU(Spec):
    """x if x > 0 else alpha * (exp(x) - 1)."""

    type = "ELU"
    param = "elu_param"
    fields = frozenset({"alpha"})
    parse = staticmethod(lambda p, layer: ELUParams(p.alpha))
    infer = staticmethod(_same)


@dataclass(frozen=True)
class PowerParams:
    power: float
    scale: float
    shift: float


@SPECS.register
class Power(Spec):
    """(shift + scale * x) ^ power."""

    type = "Power"
    param = "power_param"
    fields = frozenset({"power", "scale", "shift"})
    parse = staticmethod(lambda p, layer: PowerParams(p.power, p.scale, p.shift))
    infer = staticmethod(_same)


@dataclass(frozen=True)
class ExpLogParams:
    base: float  # -1 means e
    scale: float
    shift: float


def _exp_log(p, layer):
    if p.base != -1 and p.base <= 0:
        raise LayerProblem("base", f"must be -1 (e) or positive, got {p.base}")
    return ExpLogParams(p.base, p.scale, p.shift)


@SPECS.register
class Exp(Spec):
    """base ^ (shift + scale * x)."""

    type = "Exp"
    param = "exp_param"
    fields = frozenset({"base", "scale", "shift"})
    parse = staticmethod(_exp_log)
    infer = staticmethod(_same)


@SPECS.register
class Log(Spec):
    """log_base(shift + scale * x)."""

    type = "Log"
    param = "log_param"
    fields = frozenset({"base", "scale", "shift"})
    parse = staticmethod(_exp_log)
    infer = staticmethod(_same)


@dataclass(frozen=True)
class ThresholdParams:
    threshold: float


@SPECS.register
class Threshold(Spec):
    """1 if x > threshold else 0."""

    type = "Threshold"
    param = "threshold_param"
    fields = frozenset({"threshold"})
    parse = staticmethod(lambda p, layer: ThresholdParams(p.threshold))
    infer = staticmethod(_same)


@dataclass(frozen=True)
class PReLUParams:
    channel_shared: bool


@SPECS.register
class PReLU(Spec):
    """max(x, 0) + a_c * min(x, 0), one slope per channel (axis 1) or one shared slope."""

    type = "PReLU"
    param = "prelu_param"
    fields = frozenset({"channel_shared"})
    parse = staticmethod(lambda p, layer: PReLUParams(p.channel_shared))

    @staticmethod
    def infer(params, shapes):
        shape = shapes[0]
        if len(shape) < 2 and not params.channel_shared:
            raise LayerProblem("bottom", "per-channel PReLU needs at least 2 axes")
        return Inferred([shape], [() if params.channel_shared else (shape[1],)])
