"""Element-wise layers against real Caffe."""
import numpy as np
import pytest

import caffe2onnx
from caffe2onnx.converter import build_model
from caffe2onnx.errors import UnsupportedLayerError
from caffe2onnx.validators.caffe_reference import CaffeRejected, run_caffe
from harness import check_case, input_layer, live_caffe

CASES = {
    "relu": 'layer { name: "l" type: "ReLU" bottom: "data" top: "out" }',
    "relu_leaky": 'layer { name: "l" type: "ReLU" bottom: "data" top: "out" relu_param { negative_slope: 0.1 } }',
    "relu_inplace": 'layer { name: "l" type: "ReLU" bottom: "data" top: "data" }',
    "sigmoid": 'layer { name: "l" type: "Sigmoid" bottom: "data" top: "out" }',
    "tanh": 'layer { name: "l" type: "TanH" bottom: "data" top: "out" }',
    "dropout": 'layer { name: "l" type: "Dropout" bottom: "data" top: "out" dropout_param { dropout_ratio: 0.3 } }',
    "split": 'layer { name: "l" type: "Split" bottom: "data" top: "a" top: "b" top: "c" }',
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_activation(tmp_path, case):
    text = input_layer((2, 3, 5, 7)) + CASES[case]
    check_case(tmp_path, f"activation_{case}", text, {})


def _act(type_: str, param: str = "", body: str = "", bottom: str = "data", top: str = "out", name: str = "l") -> str:
    p = f"{param} {{ {body} }}" if param else ""
    return f'layer {{ name: "{name}" type: "{type_}" bottom: "{bottom}" top: "{top}" {p} }}\n'


_POWER, _EXP, _LOG = ("Power", "power_param"), ("Exp", "exp_param"), ("Log", "log_param")

# case id -> (input shape, layer text, input scale)
MORE = {
    "prelu_4d": ((2, 3, 4, 5), _act("PReLU"), 1.0),
    "prelu_shared": ((2, 3, 4, 5), _act("PReLU", "prelu_param", "channel_shared: true"), 1.0),
    "prelu_2d": ((4, 6), _act("PReLU"), 1.0),
    "prelu_3d": ((2, 5, 7), _act("PReLU"), 1.0),
    "prelu_shared_2d": ((3, 4), _act("PReLU", "prelu_param", "channel_shared: true"), 1.0),
    "prelu_in_place": ((2, 3, 4), _act("PReLU", top="data"), 1.0),
    "elu": ((2, 3, 4, 5), _act("ELU"), 2.0),
    "elu_alpha": ((2, 3, 4), _act("ELU", "elu_param", "alpha: 0.3"), 2.0),
    "absval": ((2, 3, 4, 5), _act("AbsVal"), 1.0),
    "bnll": ((2, 3, 4, 5), _act("BNLL"), 1.0),
    "bnll_wide": ((4, 50), _act("BNLL"), 30.0),
    "power_identity": ((2, 3, 4), _act("Power"), 1.0),
    "power_square": ((2, 3, 4, 5), _act(*_POWER, "power: 2"), 1.0),
    "power_cube_affine": ((2, 3, 4), _act(*_POWER, "power: 3 scale: -0.5 shift: 0.25"), 1.0),
    "power_sqrt": ((2, 3, 4), _act(*_POWER, "power: 0.5 scale: 0.2 shift: 2"), 1.0),
    "power_inverse": ((2, 3, 4), _act(*_POWER, "power: -1 shift: 3"), 0.5),
    "power_fractional_neg": ((2, 3, 4), _act(*_POWER, "power: -1.5 scale: 0.1 shift: 1"), 1.0),
    "power_affine_only": ((2, 3, 4), _act(*_POWER, "scale: 2.5 shift: -1"), 1.0),
    "power_scale0": ((2, 3, 4), _act(*_POWER, "power: 2 scale: 0 shift: 1.5"), 1.0),
    "power_power0": ((2, 3, 4), _act(*_POWER, "power: 0 scale: 3 shift: -2"), 1.0),
    "power_scale0_shift0": ((2, 3, 4), _act(*_POWER, "power: 2.5 scale: 0"), 1.0),
    "power_sqrt_negative_nan": ((2, 3, 4), _act(*_POWER, "power: 0.5"), 1.0),
    "power_scale0_nan": ((2, 3), _act(*_POWER, "power: 0.5 scale: 0 shift: -1"), 1.0),
    "power_scale0_inf": ((2, 3), _act(*_POWER, "power: -1 scale: 0"), 1.0),
    "exp": ((2, 3, 4, 5), _act("Exp"), 1.0),
    "exp_base2": ((2, 3, 4), _act(*_EXP, "base: 2"), 1.0),
    "exp_scale_shift": ((2, 3, 4), _act(*_EXP, "scale: 0.5 shift: 0.7"), 1.0),
    "exp_base_scale_shift": ((2, 3, 4), _act(*_EXP, "base: 3 scale: -0.4 shift: 1.5"), 1.0),
    "exp_base1": ((2, 3), _act(*_EXP, "base: 1 scale: 2 shift: 3"), 1.0),
    "log_abs": ((2, 3, 4), _act("AbsVal", top="a", name="abs") + _act("Log", bottom="a"), 1.0),
    "log_base10": ((2, 3, 4), _act("AbsVal", top="a", name="abs") + _act(*_LOG, "base: 10", bottom="a"), 1.0),
    "log_scale_shift": ((2, 3, 4, 5), _act(*_LOG, "scale: 0.1 shift: 1"), 1.0),
    "log_negative_nan": ((2, 3, 4), _act("Log"), 1.0),
    "log_base2_affine": ((2, 3, 4), _act(*_LOG, "base: 2 scale: -0.5 shift: 4"), 1.0),
    "threshold": ((2, 3, 4, 5), _act("Threshold"), 1.0),
    "threshold_value": ((2, 3, 4), _act("Threshold", "threshold_param", "threshold: 0.4"), 1.0),
    "threshold_in_place": ((2, 3, 4), _act("Threshold", "threshold_param", "threshold: -0.2", top="data"), 1.0),
}


@pytest.mark.parametrize("case", sorted(MORE))
def test_activation_more(tmp_path, case):
    shape, text, scale = MORE[case]
    check_case(tmp_path, f"activation_{case}", input_layer(shape) + text, {}, input_scale=scale)


def test_log_base_one_rejected(tmp_path):
    """log(1) = 0 makes Caffe's 1 / log(base) infinite: Caffe refuses the layer, and so do we, naming the field."""
    path = tmp_path / "net.prototxt"
    path.write_text(input_layer((2, 3)) + _act(*_LOG, "base: 1"))
    net = caffe2onnx.load(path)
    with pytest.raises(UnsupportedLayerError, match="log_param.base"):
        build_model(net, opset=17)
    if live_caffe():
        with pytest.raises(CaffeRejected, match="log"):
            run_caffe(path, None, {"data": np.ones((2, 3), np.float32)})
