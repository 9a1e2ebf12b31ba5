"""validate without repeating yourself (issue 11, item 2): shapes and seed from the model, one
option group for validate and convert --validate, checks at batch 1, nets without parameters."""
from __future__ import annotations

import json
import warnings

import pytest

from caffe2onnx.cli import main
from caffe2onnx.validators.caffe_reference import caffe_available

needs_caffe = pytest.mark.skipif(not caffe_available(), reason="real Caffe (pycaffe) is not installed")

# The InnerProduct's weights are 4*C*H*W: seeded random weights depend on the input's H and W,
# so validate must read the net at the shapes convert used, or the weights differ.
NET = """name: "tiny"
input: "data"
input_shape { dim: %d dim: 3 dim: 8 dim: 8 }
layer { name: "conv" type: "Convolution" bottom: "data" top: "conv" convolution_param { num_output: 4 kernel_size: 3 } }
layer { name: "relu" type: "ReLU" bottom: "conv" top: "conv" }
layer { name: "pool" type: "Pooling" bottom: "conv" top: "pool" pooling_param { pool: MAX kernel_size: 2 stride: 2 } }
layer { name: "fc" type: "InnerProduct" bottom: "pool" top: "fc" inner_product_param { num_output: 5 } }
layer { name: "prob" type: "Softmax" bottom: "fc" top: "prob" }
"""

NO_PARAMS = """name: "plain"
input: "data"
input_shape { dim: 1 dim: 2 dim: 6 dim: 6 }
layer { name: "relu" type: "ReLU" bottom: "data" top: "relu" }
layer { name: "pool" type: "Pooling" bottom: "relu" top: "pool" pooling_param { pool: AVE kernel_size: 2 stride: 2 } }
"""


def _net(tmp_path, text=NET % 2, name="net.prototxt"):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def _report(path) -> dict:
    return json.loads(path.read_text())


def test_validate_reads_shapes_and_seed_from_the_model(tmp_path, capsys):
    net, model, js = _net(tmp_path), str(tmp_path / "m.onnx"), tmp_path / "r.json"
    assert main(["convert", net, "--random-weights", "7", "--input-shape", "data=2,3,10,10", "-o", model, "-q"]) == 0
    # no --input-shape: 10x10 from the model (the prototxt says 8x8, whose fc weights differ)
    assert main(["validate", net, model, "--random-weights", "7", "--reference", "numpy", "--json", str(js)]) == 0
    assert _report(js)["inputs"]["data"]["shape"] == [2, 3, 10, 10]
    assert main(["validate", net, model, "--random-weights", "8", "--reference", "numpy", "-q"]) == 1  # other seed
    capsys.readouterr()
    assert main(["validate", net, model, "--random-weights", "7", "--batch", "1"]) == 2  # a static batch is kept
    assert "has the static batch 2" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:  # no weights, no seed: a usage error that names the seed
        main(["validate", net, model])
    assert e.value.code == 2
    assert "converted with --random-weights 7" in capsys.readouterr().err


def test_validate_symbolic_batch_defaults_to_1(tmp_path):
    net, model, js = _net(tmp_path), str(tmp_path / "m.onnx"), tmp_path / "r.json"
    assert main(["convert", net, "--random-weights", "1", "--dynamic-batch", "-o", model, "-q"]) == 0
    base = ["validate", net, model, "--random-weights", "1", "--reference", "numpy", "-q", "--json", str(js)]
    assert main(base) == 0 and _report(js)["inputs"]["data"]["shape"] == [1, 3, 8, 8]
    assert main(base + ["--batch", "3"]) == 0 and _report(js)["inputs"]["data"]["shape"] == [3, 3, 8, 8]
    assert main(base + ["--input-shape", "data=4,3,8,8"]) == 0 and _report(js)["inputs"]["data"]["shape"][0] == 4


@needs_caffe
def test_validate_with_weights_against_real_caffe_needs_no_shape_flags(tmp_path):
    from caffe2onnx.caffemodel_writer import write_net_weights
    from caffe2onnx.parser import load
    net = _net(tmp_path)
    weights, model, js = tmp_path / "w.caffemodel", str(tmp_path / "m.onnx"), tmp_path / "r.json"
    write_net_weights(weights, load(net, input_shapes={"data": (2, 3, 9, 9)}, random_weights=3))
    assert main(["convert", net, str(weights), "--input-shape", "data=2,3,9,9", "-o", model, "-q"]) == 0
    assert main(["validate", net, str(weights), model, "--reference", "caffe", "-q", "--json", str(js)]) == 0
    assert _report(js)["reference"] == "caffe" and _report(js)["inputs"]["data"]["shape"] == [2, 3, 9, 9]


def test_convert_validate_runs_at_batch_1_and_writes_the_report(tmp_path, capsys):
    import onnx
    net, model = _net(tmp_path, NET % 10000), str(tmp_path / "m.onnx")
    js, xml = tmp_path / "r.json", tmp_path / "r.xml"
    assert main(["convert", net, "--random-weights", "2", "-o", model, "--validate", "--json", str(js),
                 "--junit", str(xml), "--layers", "--reference", "numpy", "--seed", "4"]) == 0
    out = capsys.readouterr().out
    assert "at batch 1 (a model built the same way)" in out and "conv " in out  # --layers: every blob
    data = _report(js)
    assert data["passed"] and data["inputs"]["data"]["shape"] == [1, 3, 8, 8]
    assert data["inputs"]["data"]["source"] == "random normal (seed 4)" and "<testcase" in xml.read_text()
    assert onnx.load(model).graph.input[0].type.tensor_type.shape.dim[0].dim_value == 10000  # written as declared
    assert main(["convert", net, "--random-weights", "2", "-o", model, "--validate", "--batch", "2",
                 "--validate-reference", "numpy", "--json", str(js), "-q"]) == 0  # the deprecated alias
    assert _report(js)["inputs"]["data"]["shape"] == [2, 3, 8, 8] and _report(js)["reference"] == "numpy"


def test_convert_and_validate_share_one_option_group():
    from caffe2onnx.cli import build_parser
    sub = build_parser()._subparsers._group_actions[0].choices
    flags = lambda p: {s for a in p._actions for s in a.option_strings}  # noqa: E731
    check = {"--reference", "--provider", "--atol", "--rtol", "--json", "--junit", "--layers", "--input", "--seed",
             "--mean", "--mean-file", "--scale", "--channel-order", "--timeout", "--batch"}
    assert check <= flags(sub["convert"]) and check <= flags(sub["validate"])


def test_net_without_parameters_converts_without_weights(tmp_path, capsys):
    model = str(tmp_path / "m.onnx")
    assert main(["convert", _net(tmp_path, NO_PARAMS, "plain.prototxt"), "-o", model, "-q", "--validate",
                 "--reference", "numpy"]) == 0
    assert main(["validate", _net(tmp_path, NO_PARAMS, "plain.prototxt"), model, "--random-weights", "0",
                 "--reference", "numpy", "-q"]) == 0
    assert main(["convert", _net(tmp_path), "-o", model, "-q"]) == 2
    assert "give WEIGHTS.caffemodel or --random-weights SEED" in capsys.readouterr().err


def test_warnings_are_one_line(monkeypatch, capsys):
    from caffe2onnx.cli import layers_cmd

    def run(args):
        warnings.warn("first line\nsecond line", UserWarning)
        return 0
    monkeypatch.setattr(layers_cmd, "run", run)
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        assert main(["layers"]) == 0
        err = capsys.readouterr().err
    assert err.splitlines() == ["caffe2onnx: warning: first line | second line"]


def test_trained_caffemodel_alone_converts_and_validates_without_flags(tmp_path):
    from harness import corpus
    weights = str(corpus("trained/lenet_mnist_ethereon/lenet_iter_10000.caffemodel"))  # skips without it
    model, js = str(tmp_path / "lenet.onnx"), tmp_path / "r.json"
    reference = "caffe" if caffe_available() else "numpy"
    assert main(["convert", weights, "-o", model, "--input-shape", "data=2,1,28,28", "-q"]) == 0
    assert main(["validate", weights, model, "--reference", reference, "-q", "--json", str(js)]) == 0
    assert _report(js)["inputs"]["data"]["shape"] == [2, 1, 28, 28] and _report(js)["reference"] == reference
