"""Element-wise layers against real Caffe."""
import pytest

from harness import check_case, input_layer

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
