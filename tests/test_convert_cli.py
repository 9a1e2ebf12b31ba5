"""`caffe2onnx convert` and `caffe2onnx layers`: summary, atomic writes, exit codes, options."""
import subprocess
import sys

import numpy as np
import onnx
import pytest

import caffe2onnx
from caffe2onnx.cli import main
from caffe2onnx.converter import build, max_opset
from caffe2onnx.op_mappings import MAPPINGS
from loader_util import write

NET = ('layer { name: "in" type: "Input" top: "data" input_param { shape { dim: 2 dim: 3 dim: 8 dim: 8 } } }\n'
       'layer { name: "conv" type: "Convolution" bottom: "data" top: "conv" convolution_param { num_output: 4 kernel_size: 3 } }\n'
       'layer { name: "relu" type: "ReLU" bottom: "conv" top: "conv" }\n'
       'layer { name: "ip" type: "InnerProduct" bottom: "conv" top: "ip" inner_product_param { num_output: 5 } }\n'
       'layer { name: "prob" type: "Softmax" bottom: "ip" top: "prob" }\n')


def test_convert_prints_a_summary_and_writes_a_valid_model(tmp_path, capsys):
    out = tmp_path / "m.onnx"
    assert main(["convert", str(write(tmp_path, NET)), "--random-weights", "0", "-o", str(out)]) == 0
    text = capsys.readouterr().out
    for part in ("Caffe layers   4", "ONNX nodes", "at opset 17", "parameters     837", "prob [2x5]", "data [2x3x8x8]"):
        assert part in text
    model = onnx.load(out)
    onnx.checker.check_model(model, full_check=True)
    names = {i.name for i in model.graph.initializer}
    assert {"conv/blob0", "conv/blob1", "ip/blob0", "ip/blob1"} <= names
    assert [n.name for n in model.graph.node][:2] == ["conv", "relu"]


def test_streamed_file_equals_the_in_memory_model(tmp_path):
    net = caffe2onnx.load(write(tmp_path, NET), random_weights=1)
    built = build(net)
    built.save(tmp_path / "s.onnx")
    streamed = onnx.load(tmp_path / "s.onnx")
    assert streamed == built.to_proto()


def test_failed_conversion_writes_nothing_and_exits_2(tmp_path, capsys):
    bad = write(tmp_path, NET.replace('"Softmax"', '"Frobnicate"'))
    out = tmp_path / "m.onnx"
    assert main(["convert", str(bad), "--random-weights", "0", "-o", str(out)]) == 2  # an input error
    err = capsys.readouterr().err
    assert "layer 'prob' (type Frobnicate)" in err and "nothing written" in err
    assert list(tmp_path.iterdir()) == [bad]


def test_weights_or_random_weights_required(tmp_path, capsys):
    # a net with parameters needs them (a net without converts alone: tests/test_validate_ux.py)
    assert main(["convert", str(write(tmp_path, NET)), "-o", str(tmp_path / "m.onnx")]) == 2
    assert "give WEIGHTS.caffemodel or --random-weights SEED" in capsys.readouterr().err
    assert not (tmp_path / "m.onnx").exists()


@pytest.mark.parametrize("opset", [10, max_opset() + 1])
def test_unsupported_opset(tmp_path, opset, capsys):
    assert main(["convert", str(write(tmp_path, NET)), "--random-weights", "0", "--opset", str(opset),
                 "-o", str(tmp_path / "m.onnx")]) == 2
    assert f"opset {opset} is not supported" in capsys.readouterr().err


def test_input_shape_and_dynamic_batch(tmp_path):
    import onnxruntime as ort
    out = tmp_path / "m.onnx"
    assert main(["convert", str(write(tmp_path, NET)), "--random-weights", "0", "--input-shape", "data=1,3,10,10",
                 "--dynamic-batch", "-q", "-o", str(out)]) == 0
    model = onnx.load(out)
    dims = model.graph.input[0].type.tensor_type.shape.dim
    assert dims[0].dim_param == "N" and [d.dim_value for d in dims[1:]] == [3, 10, 10]
    sess = ort.InferenceSession(str(out))
    for n in (1, 3):
        (prob,) = sess.run(None, {"data": np.ones((n, 3, 10, 10), np.float32)})
        assert prob.shape == (n, 5)


def test_bad_input_shape_syntax(tmp_path):
    with pytest.raises(SystemExit):
        main(["convert", str(write(tmp_path, NET)), "--random-weights", "0", "--input-shape", "data:1x3",
              "-o", str(tmp_path / "m.onnx")])


def test_caffemodel_alone(tmp_path, capsys):
    from caffe2onnx.parser.text import read_prototxt
    net = caffe2onnx.load(write(tmp_path, NET), random_weights=0)
    param = read_prototxt(tmp_path / "net.prototxt")
    for layer in param.layer:
        if layer.name in ("conv", "ip"):
            for w in net.layer(layer.name).weights:
                blob = layer.blobs.add()
                blob.shape.dim.extend(w.shape)
                blob.data.extend(w.ravel().tolist())
    (tmp_path / "alone.caffemodel").write_bytes(param.SerializeToString())
    assert main(["convert", str(tmp_path / "alone.caffemodel"), "-q", "-o", str(tmp_path / "m.onnx")]) == 0


def test_layers_lists_the_registry(capsys):
    assert main(["layers"]) == 0
    text = capsys.readouterr().out
    for t in MAPPINGS.types():
        assert f"  {t} " in text
    assert f"{len(MAPPINGS.types())} Caffe layer types" in text


def test_console_script_help():
    r = subprocess.run([sys.executable, "-m", "caffe2onnx", "convert", "--help"], capture_output=True, text=True)
    assert r.returncode == 0 and "--dynamic-batch" in r.stdout and "--random-weights" in r.stdout


def test_models_over_protobufs_2gib_limit_are_refused_in_one_file_before_writing(tmp_path):
    big = NET.replace("num_output: 5", "num_output: 4000000")
    # ip weights: 4e6 x 144 floats = 2.3 GB, which never gets allocated: the check uses shapes.
    net = caffe2onnx.load(write(tmp_path, big))
    from caffe2onnx.errors import ConversionError
    from caffe2onnx.onnx_writer import BuiltModel

    class _Lazy:  # shape and size only, like a memory-mapped array
        def __init__(self, shape):
            self.shape, self.size = shape, int(np.prod(shape))
    weights = [(f"{l.name}/blob{i}", _Lazy(s)) for l in net.layers for i, s in enumerate(l.weight_shapes)]
    with pytest.raises(ConversionError, match="over protobuf's 2 GiB limit"):
        BuiltModel(onnx.ModelProto(), weights).save(tmp_path / "big.onnx", external_data=False)
    assert not list(tmp_path.glob("*.onnx*")) and not list(tmp_path.glob(".big*"))


def test_the_command_flushes_everything_before_its_fast_exit(capsys):
    """`caffe2onnx` (cli.console) ends with os._exit: what main() printed must all be out first."""
    assert main(["layers"]) == 0
    expected = capsys.readouterr().out
    r = subprocess.run([sys.executable, "-m", "caffe2onnx", "layers"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stdout == expected and len(expected) > 1000
    bad = subprocess.run([sys.executable, "-m", "caffe2onnx", "convert", "missing.prototxt", "-o", "x.onnx"],
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1
