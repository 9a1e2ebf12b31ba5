"""`caffe2onnx.validators`: parity checks, first-divergence reports, JSON/JUnit, inputs."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import helper, numpy_helper

import caffe2onnx
from caffe2onnx.caffemodel_writer import write_net_weights
from caffe2onnx.converter import convert_file
from caffe2onnx.validators.caffe_reference import caffe_available
from caffe2onnx.validators.check import ValidationError, validate
from caffe2onnx.validators.compare import compare_blob, tolerances
from caffe2onnx.validators.inputs import InputError, Preprocess, make_inputs, read_mean_file
from caffe2onnx.validators.pytest_helper import assert_onnx_matches_caffe
from caffe2onnx.validators.references import opencv_module
from caffe2onnx.validators.report import SCHEMA, format_table, to_json, to_junit

# conv -> in-place ReLU -> LRN (k=2) -> pool -> two 1x1 convs -> Eltwise SUM with coefficients
# -> InnerProduct -> Softmax: every layer the broken-model tests tamper with, in 10 Caffe layers.
NET = """name: "small"
layer { name: "input" type: "Input" top: "data" input_param { shape { dim: 2 dim: 3 dim: 8 dim: 8 } } }
layer { name: "conv1" type: "Convolution" bottom: "data" top: "conv1"
        convolution_param { num_output: 4 kernel_size: 3 pad: 1 } }
layer { name: "relu1" type: "ReLU" bottom: "conv1" top: "conv1" }
layer { name: "norm1" type: "LRN" bottom: "conv1" top: "norm1"
        lrn_param { local_size: 3 alpha: 0.5 beta: 0.75 k: %(k)s } }
layer { name: "pool1" type: "Pooling" bottom: "norm1" top: "pool1" pooling_param { pool: MAX kernel_size: 2 stride: 2 } }
layer { name: "conv2a" type: "Convolution" bottom: "pool1" top: "conv2a" convolution_param { num_output: 4 kernel_size: 1 } }
layer { name: "conv2b" type: "Convolution" bottom: "pool1" top: "conv2b" convolution_param { num_output: 4 kernel_size: 1 } }
layer { name: "sum" type: "Eltwise" bottom: "conv2a" bottom: "conv2b" top: "sum"
        eltwise_param { operation: SUM coeff: 0.5 coeff: -1.5 } }
layer { name: "ip" type: "InnerProduct" bottom: "sum" top: "ip" inner_product_param { num_output: 10 } }
layer { name: "prob" type: "Softmax" bottom: "ip" top: "prob" }
"""
REFERENCES = ["numpy", pytest.param("caffe", marks=pytest.mark.skipif(not caffe_available(),
                                                                      reason="real Caffe (pycaffe) is not installed"))]


def small_model(tmp_path: Path, k: float = 2.0) -> tuple[Path, Path, Path]:
    """(prototxt, caffemodel with seeded random weights, converted ONNX) of NET."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    prototxt, caffemodel, model = tmp_path / "small.prototxt", tmp_path / "small.caffemodel", tmp_path / "small.onnx"
    prototxt.write_text(NET % {"k": k})
    write_net_weights(caffemodel, caffe2onnx.load(prototxt, random_weights=3))
    convert_file(model, prototxt, caffemodel)
    return prototxt, caffemodel, model


def _node(model: onnx.ModelProto, layer: str, op: str) -> onnx.NodeProto:
    nodes = [n for n in model.graph.node if n.op_type == op and n.name.split("/")[0] == layer]
    assert nodes, f"no {op} node for layer {layer}"
    return nodes[0]


def _set_attr(node: onnx.NodeProto, name: str, value) -> None:
    kept = [a for a in node.attribute if a.name != name]
    del node.attribute[:]
    node.attribute.extend(kept + [helper.make_attribute(name, value)])


def break_lrn_k(m: onnx.ModelProto) -> None:
    # LRN is converted to element-wise ops (caffe2onnx/rewrites/lrn.py): k is the constant added
    # to the window sum (ONNX LRN's bias)
    (k,) = [t for t in m.graph.initializer if t.name == "norm1/bias"]
    assert numpy_helper.to_array(k) == 2.0
    k.CopyFrom(numpy_helper.from_array(np.float32(1.0), k.name))


def swap_eltwise_coeffs(m: onnx.ModelProto) -> None:
    coeffs = [t for t in m.graph.initializer if t.name.startswith("sum/coeff")]
    assert len(coeffs) == 2
    a, b = (numpy_helper.to_array(t) for t in coeffs)
    for t, v in zip(coeffs, (b, a)):
        t.CopyFrom(numpy_helper.from_array(v, t.name))


def break_softmax_axis(m: onnx.ModelProto) -> None:
    _set_attr(_node(m, "prob", "Softmax"), "axis", 0)  # over the batch instead of the classes


BREAKS = {"lrn_k": (break_lrn_k, "norm1", "LRN", {"k": 2.0, "local_size": 3}),
          "eltwise_coeffs": (swap_eltwise_coeffs, "sum", "Eltwise", {"coeffs": [0.5, -1.5]}),
          "softmax_axis": (break_softmax_axis, "prob", "Softmax", {"axis": 1})}


def broken_model(tmp_path: Path, which: str) -> tuple[Path, Path, Path]:
    prototxt, caffemodel, model = small_model(tmp_path)
    m = onnx.load(model)
    BREAKS[which][0](m)
    onnx.checker.check_model(m)
    broken = tmp_path / f"broken_{which}.onnx"
    onnx.save(m, broken)
    return prototxt, caffemodel, broken


@pytest.mark.parametrize("reference", REFERENCES)
def test_converted_model_matches(tmp_path, reference):
    r = validate(*small_model(tmp_path), reference=reference, provider="cpu")
    assert r.passed, format_table(r, layers=True)
    assert r.reference == reference and r.provider == "CPUExecutionProvider"
    assert (r.atol, r.rtol) == (1e-4, 1e-4)
    # every Caffe layer output, plus conv1's value before the in-place ReLU overwrote it
    assert [b.layer for b in r.blobs] == ["conv1", "relu1", "norm1", "pool1", "conv2a", "conv2b", "sum", "ip", "prob"]
    assert r.blobs[0].tensor == "conv1@conv1" and not r.not_compared
    prob = r.blobs[-1]
    assert prob.top1 == 1.0 and prob.top5 == 1.0 and prob.cosine > 0.999999
    assert max(b.max_rel for b in r.blobs) < 1e-5  # rounding only: far inside rtol
    data = to_json(r)
    assert data["passed"] is True and data["first_divergence"] is None


@pytest.mark.parametrize("reference", REFERENCES)
@pytest.mark.parametrize("which", sorted(BREAKS))
def test_broken_model_names_the_first_diverging_layer(tmp_path, which, reference):
    _, layer, caffe_type, params = BREAKS[which]
    r = validate(*broken_model(tmp_path, which), reference=reference)
    assert not r.passed
    d = r.first_divergence
    assert (d["layer"], d["type"]) == (layer, caffe_type)
    assert params.items() <= d["params"].items()
    assert all(i["status"] in ("matched", "net input") for i in d["inputs"])
    first = r.failures[0]
    assert first.layer == layer and first.max_rel > 100 * r.rtol
    text = format_table(r)
    assert f"FIRST DIVERGING LAYER: '{layer}' (type {caffe_type})" in text


@pytest.mark.skipif(opencv_module() is None, reason="opencv-python-headless<5 is not installed (optional)")
def test_opencv_reference_and_its_lrn_k_deviation(tmp_path):
    assert validate(*small_model(tmp_path / "k1", k=1.0), reference="opencv").passed
    r = validate(*small_model(tmp_path / "k2", k=2.0), reference="opencv")  # OpenCV ignores k
    assert not r.passed and r.first_divergence["layer"] == "norm1"


def test_json_report_fields(tmp_path):
    r = validate(*broken_model(tmp_path, "lrn_k"), reference="numpy")
    data = json.loads(json.dumps(to_json(r)))
    assert data["schema"] == SCHEMA and data["passed"] is False
    assert {"net", "onnx", "reference", "provider", "atol", "rtol", "inputs", "outputs", "counts",
            "first_divergence", "blobs", "not_compared", "seconds"} <= data.keys()
    assert data["counts"] == {"compared": 9, "passed": 2, "failed": 7, "not_compared": 0}
    assert data["inputs"]["data"] == {"shape": [2, 3, 8, 8], "source": "random normal (seed 0)"}
    fd = data["first_divergence"]
    assert fd["layer"] == "norm1" and fd["type"] == "LRN" and fd["params"]["across_channels"] is True
    assert fd["max_rel"] > 1e-2 and fd["inputs"][0]["tensor"] == "conv1" and fd["inputs"][0]["status"] == "matched"
    blob = data["blobs"][2]
    assert {"tensor", "blob", "layer", "type", "shape", "max_abs", "max_rel", "mean_abs", "cosine", "ref_max",
            "top1", "top5", "passed", "note"} == blob.keys()
    assert blob["tensor"] == "norm1" and blob["passed"] is False


def test_junit_report_parses(tmp_path):
    junitparser = pytest.importorskip("junitparser")
    r = validate(*broken_model(tmp_path, "eltwise_coeffs"), reference="numpy")
    path = tmp_path / "parity.xml"
    path.write_text(to_junit(r))
    xml = junitparser.JUnitXml.fromfile(str(path))
    suites = list(xml)
    assert len(suites) == 1 and suites[0].tests == 9 and suites[0].failures == len(r.failures) >= 2
    cases = list(suites[0])
    assert [c.name for c in cases] == [b.tensor for b in r.blobs]
    failed = [c for c in cases if not c.is_passed]
    assert [c.classname for c in failed[:2]] == ["small.sum", "small.ip"]
    assert all(c.is_passed for c in cases[:6])  # everything before the Eltwise matches
    message = failed[0].result[0].message
    assert "layer 'sum' (Eltwise)" in message and "max abs diff" in message


def test_pytest_helper(tmp_path):
    assert assert_onnx_matches_caffe(*small_model(tmp_path / "ok"), reference="numpy").passed
    with pytest.raises(AssertionError, match=r"FIRST DIVERGING LAYER: 'prob' \(type Softmax\)"):
        assert_onnx_matches_caffe(*broken_model(tmp_path, "softmax_axis"), reference="numpy")


def test_compare_pass_rule():
    ref = np.linspace(-1000, 1000, 101, dtype=np.float32)
    # 6e-2 absolute on a blob of magnitude 1000 is 6e-5 relative: passes on rtol alone
    s = compare_blob("t", ref + np.float32(0.06), ref, 1e-4, 1e-4)
    assert s.passed and s.max_abs > 1e-4 and math.isclose(s.max_rel, s.max_abs / 1000, rel_tol=1e-6)
    small = np.full(10, 1e-6, np.float32)
    # a blob that is all near zero: huge relative error, tiny absolute one, passes on atol
    s = compare_blob("t", small * 50, small, 1e-4, 1e-4)
    assert s.passed and s.max_rel > 1
    assert not compare_blob("t", ref * 1.01, ref, 1e-4, 1e-4).passed
    nan = ref.copy()
    nan[3] = np.nan
    assert compare_blob("t", nan, nan, 1e-4, 1e-4).passed  # NaN where the reference has NaN
    bad = compare_blob("t", nan, ref, 1e-4, 1e-4)
    assert not bad.passed and "non-finite" in bad.note
    shape = compare_blob("t", ref[:10], ref, 1e-4, 1e-4)
    assert not shape.passed and "shape" in shape.note
    assert compare_blob("t", ref.reshape(1, 101, 1, 1), ref.reshape(1, 101), 1e-4, 1e-4).passed
    assert tolerances("CUDAExecutionProvider", None, None) == (1e-3, 1e-3)
    assert tolerances("CPUExecutionProvider", None, 5e-3) == (1e-4, 5e-3)


def test_compare_topk_agreement():
    rng = np.random.default_rng(0)
    ref = rng.random((4, 20)).astype(np.float32)
    got = ref.copy()
    got[0, ref[0].argmax()] = -1  # row 0: a different best class and a different top-5 set
    s = compare_blob("fc8", got, ref, 1e-4, 1e-4, is_output=True)
    assert s.top1 == 0.75 and s.top5 == 0.75 and not s.passed
    assert compare_blob("feat", got, ref, 1e-4, 1e-4).top1 is None  # not an output, not named like one
    probs = np.full((2, 3), 1 / 3, np.float32)
    s = compare_blob("x", probs, probs, 1e-4, 1e-4)
    assert s.top1 == 1.0 and s.top5 is None  # sums to one: a classifier; 3 classes: no top-5


def test_npy_npz_inputs(tmp_path):
    net = caffe2onnx.load(_write(tmp_path, NET % {"k": 2}), random_weights=0)
    x = np.arange(2 * 3 * 8 * 8, dtype=np.float64).reshape(2, 3, 8, 8)
    np.save(tmp_path / "x.npy", x)
    np.savez(tmp_path / "x.npz", data=x)
    for spec in (f"data={tmp_path / 'x.npy'}", str(tmp_path / "x.npy"), str(tmp_path / "x.npz")):
        values, sources = make_inputs(net, [spec])
        assert values["data"].dtype == np.float32 and np.array_equal(values["data"], x)
    np.save(tmp_path / "chw.npy", x[0])
    with pytest.raises(InputError, match=r"does not fit input 'data'"):
        make_inputs(net, [str(tmp_path / "chw.npy")])
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(InputError, match="pickled"):
        make_inputs(net, [str(tmp_path / "obj.npy")])
    np.savez(tmp_path / "other.npz", nope=x)
    with pytest.raises(InputError, match="no input 'nope'"):
        make_inputs(net, [str(tmp_path / "other.npz")])
    a, _ = make_inputs(net, seed=5)
    b, src = make_inputs(net, seed=5)
    assert np.array_equal(a["data"], b["data"]) and "seed 5" in src["data"]
    assert not np.array_equal(a["data"], make_inputs(net, seed=6)[0]["data"])


def _write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "net.prototxt"
    p.write_text(text)
    return p


def _mean_blob(path: Path, mean: np.ndarray) -> None:
    from caffe2onnx.proto import BlobProto
    blob = BlobProto()
    blob.shape.dim.extend([1, *mean.shape])
    blob.data.extend(mean.ravel().tolist())
    path.write_bytes(blob.SerializeToString())


def test_image_input_caffe_preprocessing(tmp_path):
    Image = pytest.importorskip("PIL.Image")
    net = caffe2onnx.load(_write(tmp_path, NET % {"k": 2}), random_weights=0)
    rgb = np.zeros((8, 8, 3), np.uint8)
    rgb[..., 0], rgb[..., 1], rgb[..., 2] = 200, 100, 50  # R, G, B
    Image.fromarray(rgb).resize((16, 12)).save(tmp_path / "img.png")  # resized back to 8x8
    pre = Preprocess(mean=(10.0, 20.0, 30.0), scale=0.5, channel_order="bgr")
    values, sources = make_inputs(net, [f"data={tmp_path / 'img.png'}"], pre=pre)
    x = values["data"]
    assert x.shape == (2, 3, 8, 8) and sources["data"].startswith("image")
    assert np.allclose(x[:, 0], (50 - 10) * 0.5) and np.allclose(x[:, 2], (200 - 30) * 0.5)  # B first
    x = make_inputs(net, [str(tmp_path / "img.png")], pre=Preprocess(channel_order="rgb"))[0]["data"]
    assert np.allclose(x[0, 0], 200) and np.allclose(x[0, 2], 50)
    mean = np.arange(3 * 10 * 10, dtype=np.float32).reshape(3, 10, 10)
    _mean_blob(tmp_path / "mean.binaryproto", mean)
    assert np.array_equal(read_mean_file(tmp_path / "mean.binaryproto"), mean)
    x = make_inputs(net, [str(tmp_path / "img.png")],
                    pre=Preprocess(mean_file=str(tmp_path / "mean.binaryproto")))[0]["data"]
    assert np.allclose(x[0, 1], 100 - mean[1, 1:9, 1:9])  # centre crop of the 10x10 mean
    with pytest.raises(InputError, match="--mean has 2 values"):
        make_inputs(net, [str(tmp_path / "img.png")], pre=Preprocess(mean=(1.0, 2.0)))


def test_check_errors(tmp_path):
    prototxt, caffemodel, model = small_model(tmp_path)
    with pytest.raises(ValidationError, match="cannot read ONNX model"):
        validate(prototxt, caffemodel, tmp_path / "missing.onnx", reference="numpy")
    with pytest.raises(ValidationError, match=r"ONNX input 'data' has shape \[2, 3, 8, 8\].*\[1, 3, 8, 8\]"):
        validate(prototxt, caffemodel, model, reference="numpy", input_shapes={"data": (1, 3, 8, 8)})
