"""Reading Caffe nets in every historical form into the normalised ``Net``."""
from __future__ import annotations

import numbers
import warnings
from pathlib import Path
from typing import Mapping, Sequence

from .. import proto
from ..errors import CaffeParseError, UsageError
from ..ir import Net
from .builder import build_net
from .caffemodel import read_caffemodel
from .rules import TEST, TRAIN, State
from .sources import embedded_phase, route
from .text import read_prototxt
from .upgrade import upgrade_net

__all__ = ["load", "TEST", "TRAIN"]


def load(prototxt: str | Path | None = None, caffemodel: str | Path | None = None, *,
         phase: int | str | None = None, level: int = 0, stages: Sequence[str] = (),
         input_shapes: Mapping[str, Sequence[int]] | None = None,
         random_weights: int | None = None, caffe_proto: str | Path | None = None) -> Net:
    """Loads a Caffe net (prototxt, caffemodel, or a caffemodel alone) as a frozen ``Net``.

    Weights bind to layers by name. ``input_shapes`` overrides or supplies input
    shapes; ``random_weights`` (a seed) fills seeded random weights instead. ``phase``
    (default TEST; for a caffemodel alone, the phase its net was saved in) picks the layers.
    A caffemodel given as ``prototxt`` is read as a caffemodel alone.
    ``caffe_proto`` reads both files with a fork's own caffe.proto (see ``proto.using``).
    """
    if caffe_proto is not None:
        with proto.using(caffe_proto):
            return load(prototxt, caffemodel, phase=phase, level=level, stages=stages,
                        input_shapes=input_shapes, random_weights=random_weights)
    if prototxt is None and caffemodel is None:
        raise CaffeParseError("give a prototxt, a caffemodel, or both")
    prototxt, caffemodel, read = route(prototxt, caffemodel)
    if random_weights is not None and caffemodel is not None:
        raise CaffeParseError("give either a caffemodel or random_weights, not both")
    if random_weights is not None and (isinstance(random_weights, bool)
                                       or not isinstance(random_weights, numbers.Integral) or random_weights < 0):
        raise UsageError(f"random_weights must be a seed >= 0, not {random_weights!r}")
    weights = None
    model_net = None
    if caffemodel is not None:
        model_net, blobs = read or read_caffemodel(caffemodel)
        names = [l.name for l in model_net.layer] + [l.name for l in model_net.layers]
        weights = dict(zip(names, blobs))  # a repeated name: the later one wins, as in Caffe
    if prototxt is not None:
        param, source = read_prototxt(prototxt), str(prototxt)
    else:
        param, source = model_net, str(caffemodel)
        _warn_round_mode(param, source)
        _refuse_misread_fork_fields(param, source)
    upgrade_net(param, source)
    stage_set = frozenset(param.state.stage) | frozenset(stages)
    wanted = None if phase is None else _phase(phase)
    if prototxt is None:
        wanted = embedded_phase(param, wanted, level, stage_set, source)
    state = State(TEST if wanted is None else wanted, level, stage_set)
    return build_net(param, state, weights, input_shapes, random_weights, source)


def _warn_round_mode(param, source: str) -> None:
    # Field 13 of PoolingParameter is BVLC's enum round_mode (CEIL = 0) but a bool
    # ceil_mode (true = 1) in several forks: in binary files the two cannot be told apart.
    for layer in list(param.layer) + list(param.layers):
        if layer.pooling_param.HasField("round_mode"):
            warnings.warn(f"{source}: pooling layer '{layer.name}' stores field 13 (round_mode = "
                          f"{layer.pooling_param.round_mode}, read as BVLC's RoundMode); a caffemodel written "
                          "by a ceil_mode fork means the opposite. Pass the deploy prototxt to be sure.",
                          stacklevel=3)


# Layer type -> (the BVLC field a fork's parameter number lands in, what that number means there).
_FORK_NUMBER_CLASHES = {
    "Interp": ("input_param", "interp_param = 143 of hszhao/PSPNet and DeepLab v2"),
    "Upsample": ("embed_param", "upsample_param = 137 of alexgkendall/caffe-segnet"),
}


def _refuse_misread_fork_fields(param, source: str) -> None:
    # In a caffemodel alone the layer parameters come from the binary: a fork that numbered its
    # parameter like a BVLC field would be decoded as that field, and the layer read with defaults.
    for layer in list(param.layer):
        clash = _FORK_NUMBER_CLASHES.get(layer.type)
        if clash and layer.HasField(clash[0]):
            raise CaffeParseError(f"{source}: layer '{layer.name}' (type {layer.type}) stores its parameters "
                                  f"in field {layer.DESCRIPTOR.fields_by_name[clash[0]].number} ({clash[1]}), "
                                  f"which this schema reads as BVLC's {clash[0]}: pass the deploy prototxt")


def _phase(phase: int | str) -> int:
    if isinstance(phase, str):
        try:
            return {"TRAIN": TRAIN, "TEST": TEST}[phase.upper()]
        except KeyError:
            raise CaffeParseError(f"phase must be TRAIN or TEST, not {phase!r}") from None
    if phase not in (TRAIN, TEST):
        raise CaffeParseError(f"phase must be TRAIN (0) or TEST (1), not {phase!r}")
    return phase
