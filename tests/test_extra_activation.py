"""ReLU6, HardSwish, HardSigmoid against the reference (brocolli) Caffe, at every opset in OPSETS."""
import pytest

from harness import check_case, input_layer


def _layer(type_: str, body: str = "", param: str = "", top: str = "out") -> str:
    p = f"{param} {{ {body} }}" if body else ""
    return f'layer {{ name: "l" type: "{type_}" bottom: "data" top: "{top}" {p} }}\n'


# case id -> (layer text, input scale)
CASES = {
    "relu6": (_layer("ReLU6"), 5.0),
    "relu6_slope_threshold": (_layer("ReLU6", "negative_slope: 0.1 threshold: 2.5", "relu6_param"), 5.0),
    "relu6_negative_threshold": (_layer("ReLU6", "negative_slope: 0.5 threshold: -0.5", "relu6_param"), 3.0),
    "relu6_in_place": (_layer("ReLU6", top="data"), 5.0),
    "hardswish": (_layer("HardSwish"), 5.0),
    "hardswish_in_place": (_layer("HardSwish", top="data"), 5.0),
    "hardsigmoid": (_layer("HardSigmoid"), 4.0),
    "hardsigmoid_alpha_beta": (_layer("HardSigmoid", "alpha: 0.7 beta: 0.1", "hardsigmoid_param"), 2.0),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_extra_activation(tmp_path, case):
    text, scale = CASES[case]
    check_case(tmp_path, f"extra_activation_{case}", input_layer((2, 3, 5, 7)) + text, {}, input_scale=scale)
