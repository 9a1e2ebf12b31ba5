"""`caffe2onnx validate` and `convert --validate`: exit codes, reports, inputs, providers, GoogLeNet."""
from __future__ import annotations

import json
import time

import numpy as np
import onnx
import pytest

import caffe2onnx
from caffe2onnx.caffemodel_writer import write_net_weights
from caffe2onnx.cli import main
from caffe2onnx.converter import convert_file
from caffe2onnx.op_mappings import MAPPINGS
from caffe2onnx.validators.caffe_reference import caffe_available

from harness import ROOT, corpus
from test_validate import NET, broken_model, small_model

needs_caffe = pytest.mark.skipif(not caffe_available(), reason="real Caffe (pycaffe) is not installed")


def _cuda_available() -> bool:
    import onnxruntime as ort
    return "CUDAExecutionProvider" in ort.get_available_providers()


def test_validate_passes(tmp_path, capsys):
    files = [str(p) for p in small_model(tmp_path)]
    assert main(["validate", *files, "--reference", "numpy"]) == 0
    out = capsys.readouterr().out
    assert "caffe2onnx validate: PASS" in out and "provider CPUExecutionProvider" in out
    assert "compared 9 tensors: 9 pass, 0 fail" in out
    assert "prob " in out and "norm1 " not in out  # outputs only without --layers
    assert main(["validate", *files, "--reference", "numpy", "--layers", "--provider", "auto"]) == 0
    out = capsys.readouterr().out
    assert "norm1 " in out
    ran = "CUDAExecutionProvider" if _cuda_available() else "CPUExecutionProvider"
    assert f"provider {ran}" in out


@needs_caffe
def test_validate_passes_against_real_caffe(tmp_path, capsys):
    assert main(["validate", *map(str, small_model(tmp_path)), "--reference", "caffe", "--layers"]) == 0
    assert "reference caffe," in capsys.readouterr().out


@pytest.mark.parametrize("reference", ["numpy", pytest.param("caffe", marks=needs_caffe)])
def test_validate_fails_with_exit_1_and_reports(tmp_path, capsys, reference):
    files = [str(p) for p in broken_model(tmp_path, "lrn_k")]
    js, xml = tmp_path / "r.json", tmp_path / "r.xml"
    rc = main(["validate", *files, "--reference", reference, "--json", str(js), "--junit", str(xml)])
    assert rc == 1
    out = capsys.readouterr().out
    assert "caffe2onnx validate: FAIL" in out
    assert "FIRST DIVERGING LAYER: 'norm1' (type LRN)" in out and "k=2.0" in out
    data = json.loads(js.read_text())
    assert data["passed"] is False and data["first_divergence"]["layer"] == "norm1"
    assert data["reference"] == reference and data["provider"] == "CPUExecutionProvider"
    junitparser = pytest.importorskip("junitparser")
    suite = next(iter(junitparser.JUnitXml.fromfile(str(xml))))
    assert suite.tests == 9 and suite.failures == data["counts"]["failed"]


def test_tolerance_options(tmp_path, capsys):
    files = [str(p) for p in broken_model(tmp_path, "lrn_k")]
    # the broken LRN is ~0.3 of its blob's magnitude off: a 0.5 rtol lets every blob through
    assert main(["validate", *files, "--reference", "numpy", "--rtol", "0.5", "--atol", "0"]) == 0
    assert "atol 0, rtol 0.5" in capsys.readouterr().out


def test_usage_and_load_errors_exit_2(tmp_path, capsys):
    prototxt, caffemodel, model = (str(p) for p in small_model(tmp_path))
    assert main(["validate", prototxt, caffemodel, str(tmp_path / "none.onnx"), "--reference", "numpy"]) == 2
    assert "cannot read ONNX model" in capsys.readouterr().err
    assert main(["validate", prototxt, caffemodel, model, "--input", "data=" + str(tmp_path / "no.npy")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["validate", prototxt, str(tmp_path / "no.caffemodel"), model]) == 2
    with pytest.raises(SystemExit) as e:
        main(["validate", prototxt, caffemodel, model, "--reference", "tensorflow"])
    assert e.value.code == 2


@pytest.mark.skipif(_cuda_available(), reason="this onnxruntime has the CUDA provider")
@pytest.mark.parametrize("provider", ["cuda", "tensorrt"])
def test_gpu_provider_without_gpu_exits_2(tmp_path, capsys, provider):
    files = [str(p) for p in small_model(tmp_path)]
    assert main(["validate", *files, "--reference", "numpy", "--provider", provider]) == 2
    err = capsys.readouterr().err
    assert "ExecutionProvider requested but this onnxruntime" in err and "onnxruntime-gpu" in err


def test_npy_npz_and_image_inputs(tmp_path, capsys):
    files = [str(p) for p in small_model(tmp_path)]
    x = np.random.default_rng(7).standard_normal((2, 3, 8, 8)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    np.savez(tmp_path / "x.npz", data=x)
    for spec in (f"data={tmp_path / 'x.npy'}", str(tmp_path / "x.npz")):
        js = tmp_path / "r.json"
        assert main(["validate", *files, "--reference", "numpy", "--input", spec, "--json", str(js)]) == 0
        assert "x.np" in json.loads(js.read_text())["inputs"]["data"]["source"]
    Image = pytest.importorskip("PIL.Image")
    Image.fromarray(np.random.default_rng(1).integers(0, 255, (20, 30, 3), np.uint8)).save(tmp_path / "cat.jpg")
    assert main(["validate", *files, "--reference", "numpy", "--input", f"data={tmp_path / 'cat.jpg'}",
                 "--mean", "104,117,123", "--scale", "0.017", "--channel-order", "bgr"]) == 0
    assert f"image {tmp_path / 'cat.jpg'}" in capsys.readouterr().out
    assert main(["validate", *files, "--input", str(tmp_path / "cat.jpg"), "--mean", "1,2"]) == 2


def test_convert_validate(tmp_path, capsys, monkeypatch):
    prototxt = tmp_path / "n.prototxt"
    prototxt.write_text(NET % {"k": 2})
    out = tmp_path / "n.onnx"
    assert main(["convert", str(prototxt), "--random-weights", "1", "-o", str(out), "--validate",
                 "--validate-reference", "numpy"]) == 0
    assert "9 tensors match the numpy reference on CPUExecutionProvider" in capsys.readouterr().out
    # a mapping that forgets LRN's k: the file is written, validation catches it, exit 1
    from caffe2onnx.op_mappings.registry import Mapping

    def lrn_without_k(layer, g):
        g.node("LRN", [layer.inputs[0]], [layer.outputs[0]], size=layer.params.local_size,
               alpha=layer.params.alpha, beta=layer.params.beta)
    monkeypatch.setitem(MAPPINGS._mappings, "LRN", Mapping("LRN", lrn_without_k, None, ""))
    assert main(["convert", str(prototxt), "--random-weights", "1", "-o", str(out), "--validate",
                 "--validate-reference", "numpy", "-q"]) == 1
    err = capsys.readouterr().err
    assert "FIRST DIVERGING LAYER: 'norm1' (type LRN)" in err and "does NOT match" in err and out.exists()


@needs_caffe
def test_convert_validate_with_real_caffe_and_random_weights(tmp_path, capsys):
    prototxt = tmp_path / "n.prototxt"
    prototxt.write_text(NET % {"k": 2})
    assert main(["convert", str(prototxt), "--random-weights", "4", "-o", str(tmp_path / "n.onnx"),
                 "--validate", "--validate-reference", "caffe"]) == 0
    assert "match the caffe reference" in capsys.readouterr().out


def _googlenet_prototxt():
    deploy = ROOT / "examples" / "googlenet" / "deploy.prototxt"
    return deploy if deploy.exists() else corpus("legacy/bvlc_googlenet.prototxt")


@pytest.mark.slow
def test_googlenet_validates_layer_by_layer(tmp_path, capsys):
    """GoogLeNet with seeded random weights, every layer, against real Caffe and the NumPy reference."""
    prototxt = _googlenet_prototxt()
    net = caffe2onnx.load(prototxt, input_shapes={"data": (1, 3, 224, 224)}, random_weights=0)
    missing = sorted({l.type for l in net.layers} - set(MAPPINGS.types()))
    if missing:
        pytest.skip(f"no ONNX mapping yet for {', '.join(missing)}")
    t0 = time.perf_counter()
    write_net_weights(tmp_path / "g.caffemodel", net)
    del net
    model = tmp_path / "g.onnx"
    convert_file(model, prototxt, tmp_path / "g.caffemodel", input_shapes={"data": (1, 3, 224, 224)})
    common = [str(prototxt), str(tmp_path / "g.caffemodel"), str(model), "--input-shape", "data=1,3,224,224",
              "--layers"]
    for reference in ["numpy"] + (["caffe"] if caffe_available() else []):
        js = tmp_path / f"{reference}.json"
        assert main(["validate", *common, "--reference", reference, "--json", str(js)]) == 0, \
            capsys.readouterr().out
        data = json.loads(js.read_text())
        assert data["counts"]["compared"] == 142 and data["counts"]["failed"] == 0
        prob = data["blobs"][-1]
        assert prob["tensor"] == "prob" and prob["top1"] == 1.0 and prob["top5"] == 1.0
        assert max(b["max_rel"] for b in data["blobs"]) < 1e-4
    assert "inception_5b/output" in capsys.readouterr().out
    assert time.perf_counter() - t0 < 30
    assert onnx.load(model).graph.output[0].name == "prob"
