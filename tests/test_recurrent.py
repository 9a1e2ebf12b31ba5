"""RNN, LSTM and LSTMUnit against real Caffe: gate order, weight layout, cont resets, expose_hidden,
static input; the ONNX graph is unrolled per time step."""
import pytest

import caffe2onnx
from caffe2onnx.converter import build_model
from caffe2onnx.errors import UnsupportedLayerError
from harness import check_case


def _inputs(**shapes) -> str:
    return "".join(f'layer {{ name: "in_{n}" type: "Input" top: "{n}" input_param {{ shape {{ '
                   + " ".join(f"dim: {d}" for d in s) + " } } }\n" for n, s in shapes.items())


# cont in {0, 1} (Threshold of noise): the state resets at random steps of random items.
_RESET = 'layer { name: "reset" type: "Threshold" bottom: "cont_raw" top: "cont" threshold_param { threshold: -0.3 } }\n'


def _rec(type_, bottoms, tops, body) -> str:
    b = " ".join(f'bottom: "{x}"' for x in bottoms)
    t = " ".join(f'top: "{x}"' for x in tops)
    return f'layer {{ name: "rec" type: "{type_}" {b} {t} recurrent_param {{ {body} }} }}\n'


CASES = {
    "lstm": _inputs(x=(4, 2, 3), cont=(4, 2)) + _rec("LSTM", ["x", "cont"], ["h"], "num_output: 5"),
    "lstm_resets": _inputs(x=(6, 3, 2), cont_raw=(6, 3)) + _RESET + _rec("LSTM", ["x", "cont"], ["h"], "num_output: 4"),
    "lstm_expose_hidden": _inputs(x=(3, 2, 4), cont_raw=(3, 2), h0=(1, 2, 3), c0=(1, 2, 3)) + _RESET
    + _rec("LSTM", ["x", "cont", "h0", "c0"], ["h", "hT", "cT"], "num_output: 3 expose_hidden: true"),
    "lstm_static_4d_x": _inputs(x=(3, 2, 2, 3), cont=(3, 2), xs=(2, 5)) + _rec("LSTM", ["x", "cont", "xs"], ["h"], "num_output: 4"),
    "lstm_static_exposed": _inputs(x=(2, 2, 3), cont_raw=(2, 2), xs=(2, 4), h0=(1, 2, 2), c0=(1, 2, 2)) + _RESET
    + _rec("LSTM", ["x", "cont", "xs", "h0", "c0"], ["h", "hT", "cT"], "num_output: 2 expose_hidden: true"),
    "lstm_one_step": _inputs(x=(1, 3, 4), cont=(1, 3)) + _rec("LSTM", ["x", "cont"], ["h"], "num_output: 3"),
    "rnn": _inputs(x=(4, 2, 3), cont=(4, 2)) + _rec("RNN", ["x", "cont"], ["o"], "num_output: 5"),
    "rnn_resets_exposed": _inputs(x=(5, 3, 2), cont_raw=(5, 3), h0=(1, 3, 4)) + _RESET
    + _rec("RNN", ["x", "cont", "h0"], ["o", "hT"], "num_output: 4 expose_hidden: true"),
    "rnn_static": _inputs(x=(3, 2, 3), cont_raw=(3, 2), xs=(2, 2, 2)) + _RESET + _rec("RNN", ["x", "cont", "xs"], ["o"], "num_output: 3"),
    "lstm_unit": _inputs(c_prev=(1, 3, 4), gates=(1, 3, 16), cont_raw=(1, 3)) + _RESET
    + 'layer { name: "unit" type: "LSTMUnit" bottom: "c_prev" bottom: "gates" bottom: "cont" top: "c" top: "h" }\n',
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_recurrent(tmp_path, case):
    check_case(tmp_path, f"recurrent_{case}", CASES[case], {})


@pytest.mark.parametrize("text, match", [
    (_inputs(x=(3, 2, 4), cont=(3, 2)) + _rec("LSTM", ["x", "cont"], ["h", "hT"], "num_output: 3"), "needs 1 top"),
    (_inputs(x=(3, 2, 4), cont=(3, 2)) + _rec("LSTM", ["x", "cont"], ["h"], ""), "num_output"),
    (_inputs(x=(3, 2, 4), cont=(2, 3)) + _rec("RNN", ["x", "cont"], ["o"], "num_output: 3"), "cont must be"),
    (_inputs(x=(3, 2, 4), cont=(3, 2)) + _rec("LSTM", ["x", "cont"], ["h"], "num_output: 3 bias_filler { type: 'constant' } "
                                              "debug_info: true"), None),
])
def test_refusals(tmp_path, text, match):
    path = tmp_path / "net.prototxt"
    path.write_text(text)
    if match is None:  # fillers and debug_info do not change the forward pass
        caffe2onnx.load(path, random_weights=0)
        return
    with pytest.raises(caffe2onnx.Caffe2OnnxError, match=match):
        caffe2onnx.load(path, random_weights=0)


def test_dynamic_batch_refused(tmp_path):
    path = tmp_path / "net.prototxt"
    path.write_text(CASES["lstm"])
    with pytest.raises(UnsupportedLayerError, match="dynamic-batch"):
        build_model(caffe2onnx.load(path, random_weights=0), opset=17, dynamic_batch=True)
