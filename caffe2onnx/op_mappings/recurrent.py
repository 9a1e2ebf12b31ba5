"""Caffe's recurrent layers, unrolled per time step exactly as Caffe unrolls them: RNN, LSTM, LSTMUnit.

ONNX's LSTM/RNN ops cannot honour Caffe's ``cont`` input (a per-step, per-item multiplier of the
previous state, read at run time), so each step is emitted as plain ops.
"""
from __future__ import annotations

import numpy as np

from ..ir import Layer
from .registry import MAPPINGS, BuildOptions, GraphBuilder


def _no_dynamic_batch(layer: Layer, options: BuildOptions) -> str | None:
    if options.dynamic_batch:
        return "the batch is axis 1 of a recurrent layer (axis 0 is time): --dynamic-batch is not supported"
    return None


def _steps(layer: Layer, g: GraphBuilder, gates: int) -> tuple[list[str], list[str], str | None]:
    """Per step: x_t projected (W x_t + b, (1, N, gates*H)) and cont_t as (1, N, 1); the static term."""
    p = layer.params
    t, n = layer.input_shapes[0][:2]
    x = g.reshape(layer.inputs[0], [t, n, -1])
    proj = g.node("Add", [g.node("MatMul", [x, g.weight(0, layer.weights[0].T)])[0], g.weight(1)])[0]
    static = None
    if p.static_input:
        xs = g.reshape(layer.inputs[2], [n, -1])
        static = g.node("MatMul", [xs, g.weight(2, layer.weights[2].T)])[0]
    cont = g.unsqueeze(layer.inputs[1], [2])
    if t == 1:
        return [proj], [cont], static
    xs_t = g.split(proj, 0, [1] * t, [g.fresh(f"x_{i + 1}") for i in range(t)])
    cont_t = g.split(cont, 0, [1] * t, [g.fresh(f"cont_{i + 1}") for i in range(t)])
    return xs_t, cont_t, static


def _initial(layer: Layer, g: GraphBuilder, k: int) -> str:
    """Initial state k: the exposed bottom, else zeros (Caffe's state on a net's first forward)."""
    p = layer.params
    if p.expose_hidden:
        return layer.inputs[2 + p.static_input + k]
    n = layer.input_shapes[0][1]
    return g.const(np.zeros((1, n, p.num_output), np.float32), f"state{k}_0")


def _finish(layer: Layer, g: GraphBuilder, outs: list[str], finals: list[str]) -> None:
    if len(outs) > 1:
        g.node("Concat", outs, [layer.outputs[0]], axis=0)
    else:
        g.node("Identity", outs, [layer.outputs[0]])
    if layer.params.expose_hidden:
        for state, top in zip(finals, layer.outputs[1:]):
            g.node("Identity", [state], [top])


def _unit(g: GraphBuilder, c_prev: str, gates: str, cont: str, h: int, outs: list[str] | None = None) -> tuple[str, str]:
    """LSTMUnit: i, f, o, g = split(gates); c = cont * sigmoid(f) * c_prev + sigmoid(i) * tanh(g); h = sigmoid(o) * tanh(c)."""
    gi, gf, go, gg = g.split(gates, 2, [h] * 4, [g.fresh(n) for n in ("i", "f", "o", "g")])
    f = g.node("Mul", [cont, g.node("Sigmoid", [gf])[0]])[0]
    ig = g.node("Mul", [g.node("Sigmoid", [gi])[0], g.node("Tanh", [gg])[0]])[0]
    c = g.node("Add", [g.node("Mul", [f, c_prev])[0], ig], [outs[0]] if outs else 1)[0]
    hh = g.node("Mul", [g.node("Sigmoid", [go])[0], g.node("Tanh", [c])[0]], [outs[1]] if outs else 1)[0]
    return c, hh


@MAPPINGS.register("LSTM", check=_no_dynamic_batch)
def lstm(layer: Layer, g: GraphBuilder) -> None:
    """Caffe's LSTM unrolled: gates (i, f, o, g) = W_hc (cont_t h_{t-1}) + W_xc x_t + b_c [+ W_xc_static x_static].

    Limits: without expose_hidden Caffe carries h_T, c_T into its next forward call; the ONNX model
    starts every call from zeros, as Caffe's first forward does (or any call whose cont is 0 at t = 0).
    """
    h_dim = layer.params.num_output
    xs_t, cont_t, static = _steps(layer, g, 4)
    w_hc = g.weight(3 if layer.params.static_input else 2, layer.weights[-1].T)
    h, c = _initial(layer, g, 0), _initial(layer, g, 1)
    outs = []
    for x_t, k_t in zip(xs_t, cont_t):
        hidden = g.node("MatMul", [g.node("Mul", [h, k_t])[0], w_hc])[0]
        gates = g.node("Add", [hidden, x_t])[0]  # Caffe's Eltwise SUM order: W_hc h, W_xc x, static
        if static is not None:
            gates = g.node("Add", [gates, static])[0]
        c, h = _unit(g, c, gates, k_t, h_dim)
        outs.append(h)
    _finish(layer, g, outs, [h, c])


@MAPPINGS.register("RNN", check=_no_dynamic_batch)
def rnn(layer: Layer, g: GraphBuilder) -> None:
    """Caffe's RNN unrolled: h_t = tanh(W_hh (cont_t h_{t-1}) + W_xh x_t + b_h [+ static]); o_t = tanh(W_ho h_t + b_o).

    Limits: without expose_hidden Caffe carries h_T into its next forward call; the ONNX model starts
    every call from zeros, as Caffe's first forward does (or any call whose cont is 0 at t = 0).
    """
    first = 3 if layer.params.static_input else 2
    xs_t, cont_t, static = _steps(layer, g, 1)
    w_hh = g.weight(first, layer.weights[first].T)
    w_ho, b_o = g.weight(first + 1, layer.weights[first + 1].T), g.weight(first + 2)
    h = _initial(layer, g, 0)
    outs = []
    for x_t, k_t in zip(xs_t, cont_t):
        pre = g.node("Add", [g.node("MatMul", [g.node("Mul", [h, k_t])[0], w_hh])[0], x_t])[0]
        if static is not None:
            pre = g.node("Add", [pre, static])[0]
        h = g.node("Tanh", [pre])[0]
        outs.append(g.node("Tanh", [g.node("Add", [g.node("MatMul", [h, w_ho])[0], b_o])[0]])[0])
    _finish(layer, g, outs, [h])


@MAPPINGS.register("LSTMUnit")
def lstm_unit(layer: Layer, g: GraphBuilder) -> None:
    """c = cont * sigmoid(f) * c_prev + sigmoid(i) * tanh(g), h = sigmoid(o) * tanh(c); gates ordered (i, f, o, g)."""
    c_prev, gates, cont = layer.inputs
    h = layer.input_shapes[0][2]
    _unit(g, c_prev, gates, g.unsqueeze(cont, [2]), h, list(layer.outputs))
