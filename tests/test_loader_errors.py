"""Every kind of bad input gets a clear, specific error, before any large allocation."""
import tracemalloc

import pytest

import caffe2onnx
from caffe2onnx.caffemodel_writer import write_caffemodel
from caffe2onnx.errors import (CaffeParseError, NetStructureError, ShapeError, UnsupportedLayerError,
                               WeightMismatchError)
from loader_util import load_text, write

HEAD = 'layer { name: "in" type: "Input" top: "data" input_param { shape { dim: 1 dim: 3 dim: 8 dim: 8 } } }\n'


def test_errors_share_one_base():
    for cls in (CaffeParseError, NetStructureError, ShapeError, UnsupportedLayerError, WeightMismatchError):
        assert issubclass(cls, caffe2onnx.Caffe2OnnxError)


def test_syntax_error_reports_file_line_column(tmp_path):
    path = write(tmp_path, HEAD + 'layer {\n  name: "r"\n  type: "ReLU"\n  botom: "data"\n}\n')
    with pytest.raises(CaffeParseError) as e:
        caffe2onnx.load(path)
    assert str(e.value).startswith(f"{path}:5:")
    assert "botom" in str(e.value)
    with pytest.raises(CaffeParseError, match=rf"{path.name}:2:\d+: prototxt syntax error"):
        caffe2onnx.load(write(tmp_path, HEAD + "layer { name: 'x' \n"))


def test_missing_files(tmp_path):
    with pytest.raises(CaffeParseError, match="cannot read prototxt"):
        caffe2onnx.load(tmp_path / "nope.prototxt")
    with pytest.raises(CaffeParseError, match="cannot read caffemodel"):
        caffe2onnx.load(caffemodel=tmp_path / "nope.caffemodel")


def test_unknown_layer_types_are_all_listed_at_once(tmp_path):
    text = HEAD + "".join(f'layer {{ name: "l{i}" type: "{t}" bottom: "data" top: "l{i}" }}\n'
                          for i, t in enumerate(["Frobnicate", "ReLU", "Quux", "Frobnicate"]))
    with pytest.raises(UnsupportedLayerError) as e:
        load_text(tmp_path, text)
    assert [(n, t) for n, t, _ in e.value.problems] == [("l0", "Frobnicate"), ("l2", "Quux"), ("l3", "Frobnicate")]


def test_unsupported_parameters_name_layer_type_and_field(tmp_path):
    text = HEAD + ('layer { name: "p" type: "Pooling" bottom: "data" top: "p" pooling_param { pool: STOCHASTIC kernel_size: 2 } }\n'
                   'layer { name: "c" type: "Convolution" bottom: "data" top: "c" convolution_param { num_output: 2 kernel_size: 1 axis: 2 } }\n'
                   'layer { name: "b" type: "BatchNorm" bottom: "data" top: "b" batch_norm_param { use_alpha_beta: true } }\n')
    with pytest.raises(UnsupportedLayerError) as e:
        load_text(tmp_path, text)
    msg = str(e.value)
    assert "layer 'p' (type Pooling): field pooling_param.pool: STOCHASTIC" in msg
    assert "layer 'c' (type Convolution): field convolution_param.axis" in msg
    assert "layer 'b' (type BatchNorm): field batch_norm_param.use_alpha_beta is not supported" in msg


def test_dangling_bottom(tmp_path):
    with pytest.raises(NetStructureError, match="layer 'r' \\(type ReLU\\) has bottom 'ghost', which no layer produces"):
        load_text(tmp_path, HEAD + 'layer { name: "r" type: "ReLU" bottom: "ghost" top: "r" }\n')


def test_duplicate_tops(tmp_path):
    text = HEAD + ('layer { name: "a" type: "ReLU" bottom: "data" top: "x" }\n'
                   'layer { name: "b" type: "Sigmoid" bottom: "data" top: "x" }\n')
    with pytest.raises(NetStructureError, match="top blob 'x' of layer 'b' .* multiple sources"):
        load_text(tmp_path, text)


def test_cycle(tmp_path):
    text = HEAD + ('layer { name: "a" type: "Eltwise" bottom: "data" bottom: "y" top: "x" }\n'
                   'layer { name: "b" type: "ReLU" bottom: "x" top: "y" }\n')
    with pytest.raises(NetStructureError, match="reads blob 'y' before layer 'b' produces it.*cycle"):
        load_text(tmp_path, text)


@pytest.mark.parametrize("dims,match", [
    ("dim: 10000 dim: 10000 dim: 10000", "1000000000000 elements, more than Caffe's limit"),
    ("dim: 1 dim: 0 dim: 3", "non-positive dimension"),
    ("dim: 1 dim: -3", "non-positive dimension"),
])
def test_absurd_input_dims_fail_before_allocating(tmp_path, dims, match):
    text = (f'layer {{ name: "in" type: "Input" top: "data" input_param {{ shape {{ {dims} }} }} }}\n'
            'layer { name: "ip" type: "InnerProduct" bottom: "data" top: "ip" inner_product_param { num_output: 10 } }\n')
    tracemalloc.start()
    try:
        with pytest.raises(ShapeError, match=match):
            load_text(tmp_path, text, random_weights=0)
        assert tracemalloc.get_traced_memory()[1] < 50 << 20
    finally:
        tracemalloc.stop()


def test_absurd_weight_shape_fails_before_allocating(tmp_path):
    text = HEAD + 'layer { name: "ip" type: "InnerProduct" bottom: "data" top: "ip" inner_product_param { num_output: 100000000 } }\n'
    with pytest.raises(ShapeError, match="weight 'ip'.*more than Caffe's limit"):
        load_text(tmp_path, text, random_weights=0)


def test_caffe_shape_rules_reject_impossible_layers(tmp_path):
    text = HEAD + 'layer { name: "c" type: "Convolution" bottom: "data" top: "c" convolution_param { num_output: 2 kernel_size: 11 } }\n'
    with pytest.raises(ShapeError, match="layer 'c' \\(type Convolution\\).*kernel extent 11 exceeds padded input 8"):
        load_text(tmp_path, text)


def _good_model(tmp_path):
    net = load_text(tmp_path, HEAD + 'layer { name: "c" type: "Convolution" bottom: "data" top: "c" '
                    'convolution_param { num_output: 4 kernel_size: 3 } }\n', random_weights=0)
    path = tmp_path / "m.caffemodel"
    write_caffemodel(path, [(l.name, l.type, list(l.weights)) for l in net.layers])
    return path


@pytest.mark.parametrize("cut", [1, 7, 40, -1])
def test_truncated_caffemodel(tmp_path, cut):
    data = _good_model(tmp_path).read_bytes()
    bad = tmp_path / "cut.caffemodel"
    bad.write_bytes(data[:cut] if cut > 0 else data[:-3])
    with pytest.raises(CaffeParseError, match="truncated or corrupt caffemodel|corrupt caffemodel|not a caffemodel"):
        caffe2onnx.load(caffemodel=bad)


def test_corrupt_and_non_caffemodel_files(tmp_path):
    bad = tmp_path / "junk.caffemodel"
    bad.write_bytes(bytes(range(256)) * 8)
    with pytest.raises(CaffeParseError, match="caffemodel"):
        caffe2onnx.load(caffemodel=bad)
    bad.write_bytes(b"")
    with pytest.raises(CaffeParseError, match="empty caffemodel"):
        caffe2onnx.load(caffemodel=bad)
    text = tmp_path / "net.caffemodel"
    text.write_text(HEAD)  # a prototxt passed as weights
    with pytest.raises(CaffeParseError, match="caffemodel"):
        caffe2onnx.load(caffemodel=text)


def test_mixed_v1_and_v2_layers(tmp_path):
    text = HEAD + 'layers { name: "r" type: RELU bottom: "data" top: "r" }\n'
    with pytest.raises(CaffeParseError, match="mixes V1 'layers' and current 'layer'"):
        load_text(tmp_path, text)
