"""Models that explain themselves (issue 11, item 5): producer, doc_string with the sources'
sha256, metadata_props, and value_info for every intermediate tensor."""
from __future__ import annotations

import hashlib
import json

import onnx
import pytest

import caffe2onnx
from caffe2onnx.caffemodel_writer import write_net_weights
from caffe2onnx.cli import main
from caffe2onnx.parser import load
from caffe2onnx.rewrites import ALIASES_KEY

NET = """name: "tiny"
input: "data"
input_shape { dim: 2 dim: 3 dim: 8 dim: 8 }
layer { name: "conv" type: "Convolution" bottom: "data" top: "conv" convolution_param { num_output: 4 kernel_size: 3 } }
layer { name: "bn" type: "BatchNorm" bottom: "conv" top: "conv" }
layer { name: "sc" type: "Scale" bottom: "conv" top: "conv" scale_param { bias_term: true } }
layer { name: "relu" type: "ReLU" bottom: "conv" top: "conv" include { stage: "keep" } }
layer { name: "pool" type: "Pooling" bottom: "conv" top: "pool" pooling_param { pool: MAX kernel_size: 2 stride: 2 } }
layer { name: "fc" type: "InnerProduct" bottom: "pool" top: "fc" inner_product_param { num_output: 5 } }
layer { name: "prob" type: "Softmax" bottom: "fc" top: "prob" }
"""


def _props(model) -> dict:
    return {p.key: p.value for p in model.metadata_props}


def _strict(model) -> None:
    onnx.checker.check_model(model, full_check=True)
    onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True)


def test_doc_string_and_metadata_name_the_sources(tmp_path):
    net = tmp_path / "net.prototxt"
    net.write_text(NET)
    weights, out = tmp_path / "w.caffemodel", tmp_path / "m.onnx"
    write_net_weights(weights, load(net, random_weights=5, stages=["keep"]))
    assert main(["convert", str(net), str(weights), "-o", str(out), "-q", "--stage", "keep", "--level", "2"]) == 0
    model = onnx.load(out)
    assert model.producer_name == "caffe2onnx" and model.producer_version == caffe2onnx.__version__
    for path in (net, weights):
        assert f"{path.name} (sha256 {hashlib.sha256(path.read_bytes()).hexdigest()})" in model.doc_string
    props = _props(model)
    assert props["caffe2onnx.phase"] == "TEST" and json.loads(props["caffe2onnx.stages"]) == ["keep"]
    assert json.loads(props["caffe2onnx.level"]) == 2
    assert json.loads(props["caffe2onnx.input_shapes"]) == {"data": [2, 3, 8, 8]}
    assert "caffe2onnx.random_weights_seed" not in props
    # validate needs neither the stage nor the level again: it reads them from the model
    assert main(["validate", str(net), str(weights), str(out), "--reference", "numpy", "-q"]) == 0


def test_value_info_for_every_intermediate_tensor(tmp_path):
    net_path = tmp_path / "net.prototxt"
    net_path.write_text(NET)
    out = tmp_path / "m.onnx"
    assert main(["convert", str(net_path), "--random-weights", "3", "-o", str(out), "-q", "--stage", "keep"]) == 0
    model, net = onnx.load(out), load(net_path, random_weights=3, stages=["keep"])
    assert json.loads(_props(model)["caffe2onnx.random_weights_seed"]) == 3
    info = {vi.name: [d.dim_value for d in vi.type.tensor_type.shape.dim] for vi in model.graph.value_info}
    aliases = json.loads(_props(model).get(ALIASES_KEY, "{}"))
    produced = {o for n in model.graph.node for o in n.output}
    want = {t for t in net.tensors if t in produced and t not in net.inputs and t not in net.outputs}
    assert set(info) == want and want and not set(info) & set(aliases)
    assert all(info[t] == list(net.shape(t)) for t in info)
    _strict(model)


@pytest.mark.parametrize("flags", [["--fold"], ["--dynamic-batch"], ["--fold", "--dynamic-batch", "--opset", "11"]])
def test_value_info_after_rewrites_and_with_a_symbolic_batch(tmp_path, flags):
    net_path = tmp_path / "net.prototxt"
    net_path.write_text(NET)
    out = tmp_path / "m.onnx"
    assert main(["convert", str(net_path), "--random-weights", "3", "-o", str(out), "-q", *flags]) == 0
    model = onnx.load(out)
    aliases = set(json.loads(_props(model).get(ALIASES_KEY, "{}")))
    names = {vi.name for vi in model.graph.value_info}
    produced = {o for n in model.graph.node for o in n.output}
    assert names and names <= produced and not names & aliases  # removed tensors get none
    if "--fold" in flags:
        assert "conv@bn" not in names and "conv" in names  # BatchNorm/Scale folded into the Conv
    if "--dynamic-batch" in flags:
        assert all(vi.type.tensor_type.shape.dim[0].dim_param == "N" for vi in model.graph.value_info)
    _strict(model)


def test_baked_preprocessing_is_kept_beside_our_metadata_and_validates_without_flags(tmp_path):
    net_path = tmp_path / "net.prototxt"
    net_path.write_text(NET)
    out = tmp_path / "m.onnx"
    assert main(["convert", str(net_path), "--random-weights", "3", "-o", str(out), "-q", "--mean", "104,117,123",
                 "--input-layout", "nhwc", "--input-dtype", "uint8", "--dynamic-batch"]) == 0
    props = _props(onnx.load(out))
    assert props["caffe2onnx.preprocess.input"] == "data" and "caffe2onnx.input_shapes" in props
    # Caffe's NCHW shapes come from the metadata, not from the NHWC uint8 graph input
    assert main(["validate", str(net_path), str(out), "--random-weights", "3", "--reference", "numpy", "-q"]) == 0
