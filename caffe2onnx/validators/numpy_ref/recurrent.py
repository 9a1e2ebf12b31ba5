"""Caffe's recurrent layers as its unrolled nets compute them: RNN, LSTM, LSTMUnit."""
from __future__ import annotations

import numpy as np

from ...ir import Layer
from .registry import FORWARDS


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return (1.0 / (1.0 + np.exp(-x.astype(np.float64)))).astype(np.float32)


def _ip(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """InnerProduct without bias over the last axis, in float64 then rounded as one float32 result."""
    return (x.astype(np.float64) @ w.astype(np.float64).T).astype(np.float32)


def _unit(c_prev, gates, cont):
    """lstm_unit_layer.cpp: f is 0 where cont is 0, else cont * sigmoid(f)."""
    h = c_prev.shape[-1]
    i, f, o, g = (gates[..., k * h:(k + 1) * h] for k in range(4))
    f = np.where(cont == 0, np.float32(0), cont * _sigmoid(f))
    c = f * c_prev + _sigmoid(i) * np.tanh(g)
    return c.astype(np.float32), (_sigmoid(o) * np.tanh(c)).astype(np.float32)


def _inputs(layer: Layer, xs: list[np.ndarray], gates: int):
    p = layer.params
    t, n = xs[0].shape[:2]
    proj = _ip(xs[0].reshape(t, n, -1), layer.weights[0]) + layer.weights[1]
    static = _ip(xs[2].reshape(n, -1), layer.weights[2])[None] if p.static_input else 0
    states = xs[2 + p.static_input:] if p.expose_hidden else []
    return proj, static, xs[1][:, :, None], states, n


@FORWARDS.register("LSTM")
def lstm(layer: Layer, xs: list[np.ndarray]) -> list[np.ndarray]:
    """Per step: h_conted = cont_t h_{t-1}; gates = W_hc h_conted + W_xc x_t + b_c (+ static); LSTMUnit."""
    p = layer.params
    proj, static, cont, states, n = _inputs(layer, xs, 4)
    zeros = np.zeros((1, n, p.num_output), np.float32)
    h, c = (states[0], states[1]) if states else (zeros, zeros)
    outs = []
    for t in range(proj.shape[0]):
        gates = _ip(h * cont[t:t + 1], layer.weights[-1]) + proj[t:t + 1] + static
        c, h = _unit(c, gates, cont[t:t + 1])
        outs.append(h)
    return [np.concatenate(outs, axis=0)] + ([h, c] if p.expose_hidden else [])


@FORWARDS.register("RNN")
def rnn(layer: Layer, xs: list[np.ndarray]) -> list[np.ndarray]:
    """Per step: h_t = tanh(W_hh (cont_t h_{t-1}) + W_xh x_t + b_h (+ static)); o_t = tanh(W_ho h_t + b_o)."""
    p = layer.params
    proj, static, cont, states, n = _inputs(layer, xs, 1)
    first = 3 if p.static_input else 2
    w_hh, w_ho, b_o = layer.weights[first:first + 3]
    h = states[0] if states else np.zeros((1, n, p.num_output), np.float32)
    outs = []
    for t in range(proj.shape[0]):
        h = np.tanh(_ip(h * cont[t:t + 1], w_hh) + proj[t:t + 1] + static).astype(np.float32)
        outs.append(np.tanh(_ip(h, w_ho) + b_o).astype(np.float32))
    return [np.concatenate(outs, axis=0)] + ([h] if p.expose_hidden else [])


@FORWARDS.register("LSTMUnit")
def lstm_unit(layer: Layer, xs: list[np.ndarray]) -> list[np.ndarray]:
    """c = f * c_prev + i * g with f = 0 where cont is 0; h = o * tanh(c); gates (i, f, o, g)."""
    c, h = _unit(xs[0], xs[1], xs[2][:, :, None])
    return [c, h]
