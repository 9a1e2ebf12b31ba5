"""Specs of Caffe's recurrent layers: RNN, LSTM (recurrent_layer.cpp, rnn_layer.cpp, lstm_layer.cpp)
and LSTMUnit."""
from __future__ import annotations

from dataclasses import dataclass

from .registry import SPECS, Inferred, LayerProblem, Spec, count

MAX_STEPS = 10000  # the ONNX graph is unrolled per time step; bound its size


@dataclass(frozen=True)
class RecurrentParams:
    num_output: int
    expose_hidden: bool
    static_input: bool  # a third bottom x_static (N, ...) feeds every step


def _parse(p, layer, states: int) -> RecurrentParams:
    if p.num_output <= 0:
        raise LayerProblem("num_output", "must be given and positive")
    exposed = states if p.expose_hidden else 0
    extra = len(layer.bottom) - 2 - exposed  # Caffe: a static input iff more bottoms than x, cont, states
    if extra not in (0, 1):
        raise LayerProblem("expose_hidden", f"{len(layer.bottom)} bottoms: Caffe's {layer.type} takes x, cont, "
                           f"an optional x_static{f' and {states} initial state(s)' if exposed else ''}")
    if len(layer.top) != 1 + exposed:
        raise LayerProblem("expose_hidden", f"needs {1 + exposed} top(s) (the output"
                           f"{' and the final states' if exposed else ''}), got {len(layer.top)}")
    return RecurrentParams(p.num_output, p.expose_hidden, extra == 1)


def _infer(params: RecurrentParams, shapes, states: int, gates: int):
    x, cont = shapes[0], shapes[1]
    if len(x) < 2:
        raise LayerProblem("bottom", f"x must be (T, N, ...), got {list(x)}")
    t, n, h = x[0], x[1], params.num_output
    if cont != (t, n):
        raise LayerProblem("bottom", f"cont must be (T, N) = {[t, n]}, got {list(cont)}")
    if t > MAX_STEPS:
        raise LayerProblem("bottom", f"{t} time steps: at most {MAX_STEPS} (the ONNX graph is unrolled per step)")
    weights = [(gates * h, count(x[2:])), (gates * h,)]
    if params.static_input:
        xs = shapes[2]
        if xs[0] != n:
            raise LayerProblem("bottom", f"x_static must be (N, ...) with N = {n}, got {list(xs)}")
        weights.append((gates * h, count(xs[1:])))
    state = (1, n, h)
    for s in shapes[2 + params.static_input:]:
        if s != state:
            raise LayerProblem("bottom", f"initial states must be {list(state)}, got {list(s)}")
    outs = [(t, n, h)] + [state] * (states if params.expose_hidden else 0)
    return outs, weights


@SPECS.register
class LSTM(Spec):
    """Caffe's unrolled LSTM: gates (i, f, o, g) = W_xc x_t + b_c [+ W_xc_static x_static] + W_hc (cont_t h_{t-1})."""

    type = "LSTM"
    param = "recurrent_param"
    fields = frozenset({"num_output", "expose_hidden", "debug_info"})
    bottoms = (2, 5)
    tops = (1, 3)

    @staticmethod
    def parse(p, layer):
        return _parse(p, layer, 2)

    @staticmethod
    def infer(params, shapes):
        outs, weights = _infer(params, shapes, 2, 4)
        return Inferred(outs, weights + [(4 * params.num_output, params.num_output)])


@SPECS.register
class RNN(Spec):
    """Caffe's unrolled RNN: h_t = tanh(W_hh (cont_t h_{t-1}) + W_xh x_t + b_h [+ W_xh_static x_static]), o_t = tanh(W_ho h_t + b_o)."""

    type = "RNN"
    param = "recurrent_param"
    fields = frozenset({"num_output", "expose_hidden", "debug_info"})
    bottoms = (2, 4)
    tops = (1, 2)

    @staticmethod
    def parse(p, layer):
        return _parse(p, layer, 1)

    @staticmethod
    def infer(params, shapes):
        outs, weights = _infer(params, shapes, 1, 1)
        h = params.num_output
        return Inferred(outs, weights + [(h, h), (h, h), (h,)])


@SPECS.register
class LSTMUnit(Spec):
    """One LSTM step: c = cont * sigmoid(f) * c_prev + sigmoid(i) * tanh(g), h = sigmoid(o) * tanh(c)."""

    type = "LSTMUnit"
    bottoms = (3, 3)
    tops = (2, 2)

    @staticmethod
    def infer(params, shapes):
        c_prev, gates, cont = shapes
        if len(c_prev) != 3 or c_prev[0] != 1 or gates != (1, c_prev[1], 4 * c_prev[2]) or cont != (1, c_prev[1]):
            raise LayerProblem("bottom", "needs c_prev (1, N, H), gate inputs (1, N, 4H) and cont (1, N)")
        return Inferred([c_prev, c_prev], [])
