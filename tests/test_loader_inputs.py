"""Every historical input style, several inputs, in-place renaming, net outputs."""
import pytest

import caffe2onnx
from caffe2onnx.errors import ShapeError
from loader_util import load_text

BODY = 'layer { name: "relu" type: "ReLU" bottom: "data" top: "out" }\n'
STYLES = {
    "input_layer": 'layer { name: "in" type: "Input" top: "data" input_param { shape { dim: 2 dim: 3 dim: 4 dim: 5 } } }\n',
    "input_shape": 'input: "data" input_shape { dim: 2 dim: 3 dim: 4 dim: 5 }\n',
    "input_dim": 'input: "data" input_dim: 2 input_dim: 3 input_dim: 4 input_dim: 5\n',
}


@pytest.mark.parametrize("style", sorted(STYLES))
def test_input_styles_give_the_same_net(tmp_path, style):
    net = load_text(tmp_path, STYLES[style] + BODY)
    assert net.inputs == ("data",)
    assert net.shape("data") == (2, 3, 4, 5)
    assert net.outputs == ("out",)
    assert [l.type for l in net.layers] == ["ReLU"]  # the Input layer becomes a graph input


def test_input_without_shape_needs_one(tmp_path):
    with pytest.raises(ShapeError, match=r"no shape for input\(s\) 'data' \(declared without a shape\).*--input-shape"):
        load_text(tmp_path, 'input: "data"\n' + BODY)
    net = load_text(tmp_path, 'input: "data"\n' + BODY, input_shapes={"data": (1, 3, 8, 8)})
    assert net.shape("out") == (1, 3, 8, 8)


def test_input_shape_override_and_unknown_name(tmp_path):
    net = load_text(tmp_path, STYLES["input_layer"] + BODY, input_shapes={"data": [7, 3, 4, 5]})
    assert net.shape("out") == (7, 3, 4, 5)
    with pytest.raises(ShapeError, match="input shape given for \\['nope'\\]"):
        load_text(tmp_path, STYLES["input_layer"] + BODY, input_shapes={"nope": (1,)})


def test_several_inputs_each_style(tmp_path):
    text = ('input: "a" input: "b" input_shape { dim: 1 dim: 2 } input_shape { dim: 1 dim: 3 }\n'
            'layer { name: "c" type: "Concat" bottom: "a" bottom: "b" top: "c" }\n')
    net = load_text(tmp_path, text)
    assert net.inputs == ("a", "b") and net.shape("c") == (1, 5)
    text = ('input: "a" input: "b" input_dim: 1 input_dim: 2 input_dim: 3 input_dim: 3 '
            'input_dim: 1 input_dim: 4 input_dim: 3 input_dim: 3\n'
            'layer { name: "c" type: "Concat" bottom: "a" bottom: "b" top: "c" }\n')
    assert load_text(tmp_path, text).shape("c") == (1, 6, 3, 3)
    text = ('layer { name: "in" type: "Input" top: "a" top: "b" input_param { shape { dim: 1 dim: 2 } } }\n'
            'layer { name: "c" type: "Concat" bottom: "a" bottom: "b" top: "c" }\n')
    assert load_text(tmp_path, text).shape("c") == (1, 4)


def test_input_dim_count_must_be_four_per_input(tmp_path):
    with pytest.raises(caffe2onnx.CaffeParseError, match="3 input_dim values for 1 inputs"):
        load_text(tmp_path, 'input: "data" input_dim: 1 input_dim: 2 input_dim: 3\n' + BODY)


def test_in_place_layers_get_unique_names_and_keep_blob_names(tmp_path):
    text = (STYLES["input_layer"]
            + 'layer { name: "conv" type: "Convolution" bottom: "data" top: "conv" '
              'convolution_param { num_output: 4 kernel_size: 1 } }\n'
            + 'layer { name: "bn" type: "BatchNorm" bottom: "conv" top: "conv" }\n'
            + 'layer { name: "relu" type: "ReLU" bottom: "conv" top: "conv" }\n'
            + 'layer { name: "pool" type: "Pooling" bottom: "conv" top: "pool" '
              'pooling_param { kernel_size: 2 stride: 2 } }\n'
            + 'layer { name: "relu2" type: "ReLU" bottom: "pool" top: "pool" }\n')
    net = load_text(tmp_path, text, random_weights=0)
    conv, bn, relu, pool, relu2 = net.layers
    assert conv.outputs == ("conv@conv",) and bn.inputs == ("conv@conv",)
    assert bn.outputs == ("conv@bn",) and relu.outputs == ("conv",) and pool.inputs == ("conv",)
    assert relu2.outputs == ("pool",) and net.outputs == ("pool",)  # the graph output keeps Caffe's name
    assert net.tensors["conv@bn"].blob == "conv" and net.tensors["conv@bn"].producer == "bn"
    names = [t for l in net.layers for t in l.outputs]
    assert len(names) == len(set(names))


def test_outputs_are_unconsumed_tops_in_caffe_order(tmp_path):
    text = (STYLES["input_layer"]
            + 'layer { name: "s" type: "Split" bottom: "data" top: "zeta" top: "alpha" top: "used" }\n'
            + 'layer { name: "r" type: "ReLU" bottom: "used" top: "mid" }\n')
    net = load_text(tmp_path, text)
    assert net.outputs == ("alpha", "mid", "zeta")  # Caffe keeps them in a std::set


def test_renamed_version_does_not_collide_with_a_real_blob(tmp_path):
    text = (STYLES["input_layer"]
            + 'layer { name: "r" type: "ReLU" bottom: "data" top: "x" }\n'
            + 'layer { name: "s" type: "Sigmoid" bottom: "data" top: "x@r" }\n'
            + 'layer { name: "t" type: "TanH" bottom: "x" top: "x" }\n')
    net = load_text(tmp_path, text)
    assert net.layers[0].outputs[0] != "x@r" and net.layers[1].outputs == ("x@r",)
