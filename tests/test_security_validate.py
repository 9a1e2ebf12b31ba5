"""Issue 7, validation of untrusted nets: the reference runs the converter's own filtered net in
an isolated worker (nothing from the cwd or the net's directory is importable), with a time limit."""
from __future__ import annotations

import os

import numpy as np
import pytest

import caffe2onnx
from caffe2onnx.cli import main
from caffe2onnx.converter import convert_file
from caffe2onnx.validators import caffe_reference
from caffe2onnx.validators.caffe_reference import caffe_available
from caffe2onnx.validators.check import validate
from loader_util import write
from test_security_files import _one_error_line

needs_caffe = pytest.mark.skipif(not caffe_available(), reason="real Caffe (pycaffe) is not installed")

NET = '''name: "n"
layer { name: "data" type: "Data" top: "data" top: "label" data_param { source: "nowhere" batch_size: 1 } }
layer { name: "ip" type: "InnerProduct" bottom: "data" top: "ip" inner_product_param { num_output: 3 }
        include { phase: TEST } }
layer { name: "relu" type: "ReLU" bottom: "ip" top: "ip" }
layer { name: "dump" type: "HDF5Output" bottom: "ip" bottom: "label" hdf5_output_param { file_name: "%(victim)s" } }
layer { name: "train_only" type: "Python" bottom: "ip" top: "py" python_param { module: "evil" layer: "Evil" }
        include { not_stage: "deploy" } }
layer { name: "prob" type: "Softmax" bottom: "ip" top: "prob" }
'''


def _files(tmp_path, stage_layer: bool = False, data_layer: bool = True):
    victim = tmp_path / "victim.h5"
    victim.write_bytes(b"precious")
    text = NET % {"victim": victim}
    if not stage_layer:
        text = "\n".join(l for l in text.splitlines() if "train_only" not in l and "not_stage" not in l) + "\n"
    if not data_layer:  # Caffe can set up every layer of this one (no database to open)
        text = text.replace('type: "Data" top: "data" top: "label" data_param { source: "nowhere" batch_size: 1 }',
                            'type: "Input" top: "data" input_param { shape { dim: 1 dim: 4 } }')
        text = text.replace('bottom: "label"', 'bottom: "prob"').replace("\n" + text.splitlines()[-1], "")
        text = text.replace('layer { name: "dump"', 'layer { name: "prob" type: "Softmax" bottom: "ip" top: "prob" }\n'
                            'layer { name: "dump"')
    prototxt = write(tmp_path, text)
    shapes = {"data": (1, 4)}
    net = caffe2onnx.load(prototxt, random_weights=0, input_shapes=shapes, stages=["deploy"])
    from caffe2onnx.caffemodel_writer import write_net_weights
    write_net_weights(tmp_path / "w.caffemodel", net)
    convert_file(tmp_path / "m.onnx", prototxt, tmp_path / "w.caffemodel", input_shapes=shapes, stages=["deploy"])
    return prototxt, tmp_path / "w.caffemodel", tmp_path / "m.onnx", victim, shapes


def test_the_reference_prototxt_is_the_converted_net(tmp_path):
    prototxt, caffemodel, _, _, shapes = _files(tmp_path, stage_layer=True)
    net = caffe2onnx.load(prototxt, caffemodel, input_shapes=shapes, stages=["deploy"])
    ref = net.reference_prototxt()
    from caffe2onnx.parser.text import parse_prototxt
    param = parse_prototxt(ref)
    assert [(l.name, l.type) for l in param.layer] == [("caffe2onnx_input", "Input"), ("ip", "InnerProduct"),
                                                       ("relu", "ReLU"), ("prob", "Softmax")]
    assert list(param.layer[0].top) == ["data"]  # "label" fed only the dropped HDF5Output
    assert [list(s.dim) for s in param.layer[0].input_param.shape] == [[1, 4]]
    assert "include" not in ref and "HDF5" not in ref and "Python" not in ref and "state" not in ref


@needs_caffe
def test_caffe_never_runs_layers_the_converter_dropped(tmp_path):
    prototxt, caffemodel, model, victim, shapes = _files(tmp_path, data_layer=False)
    assert 'type: "HDF5Output"' in prototxt.read_text()
    r = validate(prototxt, caffemodel, model, reference="caffe", input_shapes=shapes)
    assert r.passed and r.reference == "caffe"
    assert victim.read_bytes() == b"precious"  # Caffe's HDF5Output would have truncated it


@needs_caffe
def test_caffe_builds_the_net_with_the_converters_stages(tmp_path, capsys):
    # Without --stage deploy Caffe (default state) would include the Python layer and refuse the net.
    prototxt, caffemodel, model, victim, shapes = _files(tmp_path, stage_layer=True)
    args = ["validate", str(prototxt), str(caffemodel), str(model), "--reference", "caffe", "--stage", "deploy",
            "--input-shape", "data=1,4", "-q"]
    assert main(args) == 0, capsys.readouterr()
    assert victim.read_bytes() == b"precious"


def test_a_caffe_py_in_the_working_directory_is_never_imported(tmp_path, monkeypatch):
    marker = tmp_path / "ran"
    (tmp_path / "caffe.py").write_text(f"open({str(marker)!r}, 'w').write('x')\n")
    (tmp_path / "numpy.py").write_text(f"open({str(marker)!r}, 'w').write('x')\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PYTHONPATH", f".{os.pathsep}{tmp_path}")  # relative, and absolute but the cwd
    caffe_reference.caffe_available.cache_clear()
    try:
        caffe_reference.caffe_available()
        assert not marker.exists()
        from caffe2onnx.validators.onnx_runner import run_onnx_isolated
        run_onnx_isolated(_tiny_model(), {"x": np.ones((1, 2), np.float32)})
    finally:
        caffe_reference.caffe_available.cache_clear()
    assert not marker.exists()


def _tiny_model():
    from onnx import TensorProto, helper
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2])])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=7)


def test_onnxruntime_runs_in_a_killable_worker_with_a_time_limit(tmp_path, capsys):
    from caffe2onnx.validators.isolation import WorkerTimeout
    from caffe2onnx.validators.onnx_runner import run_onnx_isolated
    out, ran = run_onnx_isolated(_tiny_model(), {"x": np.array([[-1, 2]], np.float32)})
    assert ran == "CPUExecutionProvider" and out["y"].tolist() == [[0, 2]]
    with pytest.raises(WorkerTimeout, match="time limit of 0.01 s"):
        run_onnx_isolated(_tiny_model(), {"x": np.ones((1, 2), np.float32)}, timeout=0.01)
    prototxt, caffemodel, model, _, shapes = _files(tmp_path)
    with pytest.raises(WorkerTimeout, match="the numpy reference ran longer"):  # in-process: a timer stops it
        validate(prototxt, caffemodel, model, reference="numpy", input_shapes=shapes, timeout=1e-6)
    rc = main(["validate", str(prototxt), str(caffemodel), str(model), "--reference", "numpy", "--timeout", "0.01",
               "--input-shape", "data=1,4"])
    assert rc == 2
    _one_error_line(capsys.readouterr().err, "time limit")


def test_validate_bounds_the_memory_of_all_blobs_before_running(tmp_path):
    prototxt, caffemodel, model, _, _ = _files(tmp_path)
    from caffe2onnx.validators.check import ValidationError
    with pytest.raises(ValidationError, match="GiB in all"):  # ~20 GB of blobs
        validate(prototxt, caffemodel, model, reference="numpy", input_shapes={"data": (400_000_000, 4)})
