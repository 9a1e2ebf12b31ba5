"""The registry of NumPy forward functions, one per Caffe layer type."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from ...ir import Layer

ForwardFn = Callable[[Layer, list[np.ndarray]], list[np.ndarray]]


@dataclass(frozen=True)
class Forward:
    caffe_type: str
    fn: ForwardFn
    doc: str


class ForwardRegistry:
    """Caffe layer type -> NumPy forward function. An object, so tests can build their own."""

    def __init__(self) -> None:
        self._forwards: dict[str, Forward] = {}

    def register(self, caffe_type: str) -> Callable[[ForwardFn], ForwardFn]:
        """Decorator for ``fn(layer, bottoms) -> tops``; tops are float32 arrays of Caffe's shapes."""
        def deco(fn: ForwardFn) -> ForwardFn:
            if caffe_type in self._forwards:
                raise ValueError(f"NumPy forward for {caffe_type} registered twice")
            doc = (fn.__doc__ or "").strip().splitlines()[0] if fn.__doc__ else ""
            self._forwards[caffe_type] = Forward(caffe_type, fn, doc)
            return fn
        return deco

    def __contains__(self, caffe_type: str) -> bool:
        return caffe_type in self._forwards

    def get(self, caffe_type: str) -> Forward:
        return self._forwards[caffe_type]

    def types(self) -> list[str]:
        return sorted(self._forwards)


FORWARDS = ForwardRegistry()
