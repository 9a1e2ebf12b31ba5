"""ScaledTanh: y = alpha * tanh(beta * x), a layer of an example Caffe fork.

The fork's caffe.proto adds to LayerParameter
    optional ScaledTanhParameter scaled_tanh_param = 9001;
    message ScaledTanhParameter { optional float alpha = 1 [default = 1]; optional float beta = 2 [default = 1]; }
so nets using it are read with ``--caffe-proto fork_caffe.proto``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

import caffe2onnx
from caffe2onnx.layers import Inferred, LayerProblem, Spec


@dataclass(frozen=True)
class ScaledTanhParams:
    alpha: float
    beta: float


class ScaledTanhSpec(Spec):
    """Parameters and shape rule: one bottom, one top of the same shape."""

    param = "scaled_tanh_param"  # the fork's LayerParameter field
    fields = frozenset({"alpha", "beta"})  # any other field set in the net is refused by name

    @staticmethod
    def parse(p, layer):
        if p.beta == 0:
            raise LayerProblem("beta", "must be non-zero")
        return ScaledTanhParams(p.alpha, p.beta)

    @staticmethod
    def infer(params, shapes):
        return Inferred([shapes[0]], [])


def mapping(layer, g):
    """y = alpha * tanh(beta * x)

    Source: caffe2onnx example fork (examples/plugin)
    """
    p = layer.params
    x = g.node("Mul", [layer.inputs[0], g.const(np.float32(p.beta), "beta")])[0]
    t = g.node("Tanh", [x])[0]
    g.node("Mul", [t, g.const(np.float32(p.alpha), "alpha")], list(layer.outputs))


def reference(layer, bottoms):
    """NumPy forward, as the fork's C++ computes it in float32."""
    p = layer.params
    x = bottoms[0].astype(np.float32)
    return [np.float32(p.alpha) * np.tanh(np.float32(p.beta) * x)]


def register() -> None:
    caffe2onnx.register_layer("ScaledTanh", spec=ScaledTanhSpec, mapping=mapping, reference=reference)
