"""Reading Caffe nets in every historical form into the normalised ``Net``."""
from __future__ import annotations

import numbers
import warnings
from pathlib import Path
from typing import Mapping, Sequence

from ..errors import CaffeParseError, UsageError
from ..ir import Net
from .builder import build_net
from .caffemodel import read_caffemodel
from .rules import TEST, TRAIN, State
from .text import read_prototxt
from .upgrade import upgrade_net

__all__ = ["load", "TEST", "TRAIN"]


def load(prototxt: str | Path | None = None, caffemodel: str | Path | None = None, *,
         phase: int | str = TEST, level: int = 0, stages: Sequence[str] = (),
         input_shapes: Mapping[str, Sequence[int]] | None = None,
         random_weights: int | None = None) -> Net:
    """Loads a Caffe net (prototxt, caffemodel, or a caffemodel alone) as a frozen ``Net``.

    Weights bind to layers by name. ``input_shapes`` overrides or supplies input
    shapes; ``random_weights`` (a seed) fills seeded random weights instead.
    """
    if prototxt is None and caffemodel is None:
        raise CaffeParseError("give a prototxt, a caffemodel, or both")
    if random_weights is not None and caffemodel is not None:
        raise CaffeParseError("give either a caffemodel or random_weights, not both")
    if random_weights is not None and (isinstance(random_weights, bool)
                                       or not isinstance(random_weights, numbers.Integral) or random_weights < 0):
        raise UsageError(f"random_weights must be a seed >= 0, not {random_weights!r}")
    weights = None
    model_net = None
    if caffemodel is not None:
        model_net, blobs = read_caffemodel(caffemodel)
        names = [l.name for l in model_net.layer] + [l.name for l in model_net.layers]
        weights = dict(zip(names, blobs))  # a repeated name: the later one wins, as in Caffe
    if prototxt is not None:
        param, source = read_prototxt(prototxt), str(prototxt)
    else:
        param, source = model_net, str(caffemodel)
        _warn_round_mode(param, source)
    upgrade_net(param, source)
    state = State(_phase(phase), level, frozenset(param.state.stage) | frozenset(stages))
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


def _phase(phase: int | str) -> int:
    if isinstance(phase, str):
        try:
            return {"TRAIN": TRAIN, "TEST": TEST}[phase.upper()]
        except KeyError:
            raise CaffeParseError(f"phase must be TRAIN or TEST, not {phase!r}") from None
    if phase not in (TRAIN, TEST):
        raise CaffeParseError(f"phase must be TRAIN (0) or TEST (1), not {phase!r}")
    return phase
