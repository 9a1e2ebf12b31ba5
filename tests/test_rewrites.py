"""The graph rewrites (caffe2onnx/rewrites): lean graphs with real Caffe's numbers.

Identity removal and the LRN decomposition are on by default, so every parity
test of the suite (test_activation's Dropout/Split, test_vision's LRN cases,
test_architectures, test_googlenet) already runs through them against real
Caffe; here: their structure, their purity, ``--fold`` against real Caffe, and
what onnxruntime's own optimiser leaves of ResNet-50's BatchNorm + Scale.
"""
from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest

import caffe2onnx
from caffe2onnx.converter import build, build_model, check_model, convert_file
from caffe2onnx.rewrites import Graph, model_aliases
from caffe2onnx.rewrites.identities import drop_identities
from caffe2onnx.rewrites.lrn import decompose_lrn
from caffe2onnx.validators.onnx_runner import expose_tensors, run_onnx
from harness import OPSETS, assert_close, corpus, input_layer, reference

CONV = 'layer {{ name: "conv" type: "Convolution" bottom: "data" top: "{top}" convolution_param {{ num_output: 4 ' \
       'kernel_size: 3 pad: 1 {extra} }} }}\n'
BN = 'layer {{ name: "{name}" type: "BatchNorm" bottom: "{bottom}" top: "{top}" }}\n'
SCALE = 'layer {{ name: "{name}" type: "Scale" bottom: "{bottom}" top: "{top}" scale_param {{ {extra} }} }}\n'
IP = 'layer {{ name: "ip" type: "InnerProduct" bottom: "data" top: "ip" inner_product_param {{ num_output: 5 {extra} }} }}\n'

FOLD = {  # case: (input shape, layers, Mul/Add nodes left after folding)
    "conv_bn_scale_in_place": ((2, 3, 6, 6), CONV.format(top="conv", extra="")
                               + BN.format(name="bn", bottom="conv", top="conv")
                               + SCALE.format(name="sc", bottom="conv", top="conv", extra="bias_term: true")
                               + 'layer { name: "relu" type: "ReLU" bottom: "conv" top: "conv" }\n', 0),
    "conv_no_bias_bn_scale": ((1, 3, 5, 7), CONV.format(top="c", extra="bias_term: false")
                              + BN.format(name="bn", bottom="c", top="b")
                              + SCALE.format(name="sc", bottom="b", top="s", extra=""), 0),
    "ip_scale": ((3, 6), IP.format(extra="") + SCALE.format(name="sc", bottom="ip", top="ip",
                                                            extra="bias_term: true"), 0),
    "ip_transpose_bn": ((3, 2, 3), IP.format(extra="transpose: true") + BN.format(name="bn", bottom="ip", top="y"), 0),
    # the Conv's output is also read by the Eltwise: folding would change it, so nothing folds
    "conv_output_shared": ((1, 3, 4, 4), CONV.format(top="c", extra="") + BN.format(name="bn", bottom="c", top="b")
                           + 'layer { name: "sum" type: "Eltwise" bottom: "c" bottom: "b" top: "s" }\n', 3),
}


@pytest.mark.parametrize("case", sorted(FOLD))
def test_fold_matches_real_caffe(tmp_path, case):
    shape, layers, left = FOLD[case]
    net_path, model_path, ref = reference(tmp_path, f"rewrites_fold_{case}", input_layer(shape) + layers, {})
    net = caffe2onnx.load(net_path, model_path)
    for opset in OPSETS:
        built = build(net, opset=opset, fold=True)
        model = built.to_proto()
        check_model(model)
        assert sum(n.op_type in ("Mul", "Add") for n in model.graph.node) == left
        assert built.node_counts == (len(build(net, opset=opset, lean=False).model.graph.node),
                                     len(model.graph.node))
        exposed = expose_tensors(model, net.tensors, {n: t.shape for n, t in net.tensors.items()})
        got, _ = run_onnx(exposed, ref.inputs, "cpu")
        assert set(net.outputs) <= set(got)
        # the folded-away tensors no longer exist; every tensor that does matches Caffe
        assert_close(got, ref.blobs, [n for n in net.tensors if n in got])


def _graph(model: onnx.ModelProto, net) -> Graph:
    return Graph(tuple(model.graph.node), tuple(model.graph.initializer), (), tuple(net.inputs), tuple(net.outputs),
                 {n: tuple(t.shape) for n, t in net.tensors.items()})


def test_identities_leave_no_node_and_every_blob_has_its_value(tmp_path):
    text = input_layer((2, 3, 4, 4)) + (
        'layer { name: "relu" type: "ReLU" bottom: "data" top: "r" }\n'
        'layer { name: "drop" type: "Dropout" bottom: "r" top: "r" }\n'  # in place
        'layer { name: "split" type: "Split" bottom: "r" top: "a" top: "b" }\n'
        'layer { name: "sum" type: "Eltwise" bottom: "a" bottom: "b" top: "s" }\n'
        'layer { name: "last" type: "Dropout" bottom: "s" top: "out" }\n')  # a graph output
    (tmp_path / "n.prototxt").write_text(text)
    net = caffe2onnx.load(tmp_path / "n.prototxt")
    model = build_model(net, opset=OPSETS[-1])
    assert [n.op_type for n in model.graph.node] == ["Relu", "Add"]
    assert [o.name for o in model.graph.output] == ["out"]
    aliases = model_aliases(model)
    assert aliases == {"r": "r@relu", "a": "r@relu", "b": "r@relu", "s": "out"}
    x = np.random.default_rng(0).standard_normal((2, 3, 4, 4)).astype(np.float32)
    exposed = expose_tensors(model, net.tensors, {n: t.shape for n, t in net.tensors.items()})
    got, _ = run_onnx(exposed, {"data": x}, "cpu")
    assert set(got) >= set(net.tensors) - {"data"}
    np.testing.assert_array_equal(got["a"], np.maximum(x, 0))
    np.testing.assert_array_equal(got["out"], got["s"])


def test_rewrites_are_pure(tmp_path):
    (tmp_path / "n.prototxt").write_text(input_layer((1, 4, 3, 3)) + (
        'layer { name: "lrn" type: "LRN" bottom: "data" top: "l" lrn_param { local_size: 3 } }\n'
        'layer { name: "drop" type: "Dropout" bottom: "l" top: "l" }\n'))
    net = caffe2onnx.load(tmp_path / "n.prototxt")
    model = build_model(net, opset=OPSETS[-1])
    raw = build(net, opset=OPSETS[-1], lean=False).to_proto()
    graph = _graph(raw, net)
    before = [n.SerializeToString() for n in graph.nodes]
    lean = decompose_lrn(drop_identities(graph))
    assert [n.SerializeToString() for n in graph.nodes] == before and lean is not graph
    assert [n.op_type for n in lean.nodes] == [n.op_type for n in model.graph.node]
    assert "LRN" not in {n.op_type for n in lean.nodes} and "Identity" not in {n.op_type for n in lean.nodes}


@pytest.mark.parametrize("size,beta", [(7, 0.75), (3, 0.3), (5, 0.5), (1, 1.0)])
def test_lrn_decomposition_is_onnx_lrn(size, beta):
    """Every beta branch against onnxruntime's own LRN kernel (ONNX's definition; the Caffe
    cases of test_vision check the same form against real Caffe)."""
    from onnx import TensorProto, helper
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 6, 3, 5])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 6, 3, 5])
    node = helper.make_node("LRN", ["x"], ["y"], name="lrn", size=size, alpha=0.3, beta=beta, bias=1.5)
    g = Graph((node,), (), (), ("x",), ("y",), {"x": (2, 6, 3, 5)})
    lean = decompose_lrn(g)
    value = np.random.default_rng(size).standard_normal((2, 6, 3, 5)).astype(np.float32) * 3
    outs = []
    for nodes, inits in (((node,), ()), (lean.nodes, lean.constants)):
        m = helper.make_model(helper.make_graph(list(nodes), "g", [x], [y], list(inits)),
                              opset_imports=[helper.make_opsetid("", 13)])
        outs.append(run_onnx(m, {"x": value}, "cpu")[0]["y"])
    assert "LRN" not in {n.op_type for n in lean.nodes}
    np.testing.assert_allclose(outs[1], outs[0], rtol=2e-6, atol=1e-7)


def test_resnet50_batchnorm_and_scale_fuse_into_conv_in_onnxruntime(tmp_path):
    prototxt = corpus("architectures/resnet_kaiminghe/ResNet-50-deploy.prototxt")
    out = tmp_path / "r50.onnx"
    net = convert_file(out, prototxt, random_weights=0)
    opts = ort.SessionOptions()
    opts.optimized_model_filepath = str(tmp_path / "r50_opt.onnx")
    ort.InferenceSession(str(out), opts, providers=["CPUExecutionProvider"])
    optimized = onnx.load(str(tmp_path / "r50_opt.onnx"))
    affine = {l.name for l in net.layers if l.type in ("BatchNorm", "Scale")}
    assert len(affine) == 106
    left = [(n.op_type, n.name) for n in optimized.graph.node if n.name.split("/")[0] in affine
            or n.op_type in ("Sub", "Div", "Mul", "Sqrt", "Reciprocal", "BatchNormalization")]
    assert not left, left[:5]
    assert sum(n.op_type in ("Conv", "FusedConv") or n.op_type.startswith("Nchwc") for n in optimized.graph.node) >= 53


def _small_net(tmp_path):
    path = tmp_path / "n.prototxt"
    path.write_text(input_layer((1, 3, 6, 6)) + CONV.format(top="conv", extra="")
                    + BN.format(name="bn", bottom="conv", top="conv")
                    + SCALE.format(name="sc", bottom="conv", top="conv", extra="bias_term: true")
                    + 'layer { name: "drop" type: "Dropout" bottom: "conv" top: "conv" }\n')
    return path


def test_cli_reports_node_counts_and_folds(tmp_path, capsys):
    from caffe2onnx.cli import main
    net = _small_net(tmp_path)
    assert main(["convert", str(net), "--random-weights", "0", "-o", str(tmp_path / "a.onnx")]) == 0
    assert "ONNX nodes     5 at opset 17 (6 as mapped, before the graph rewrites)" in capsys.readouterr().out
    assert main(["convert", str(net), "--random-weights", "0", "-o", str(tmp_path / "b.onnx"), "--fold"]) == 0
    assert "ONNX nodes     1 at opset 17 (6 as mapped, before the graph rewrites, with --fold)" in \
        capsys.readouterr().out
    assert [n.op_type for n in onnx.load(str(tmp_path / "b.onnx")).graph.node] == ["Conv"]


class _Terminal:
    def __init__(self):
        self.text = ""

    def write(self, s):
        self.text += s

    def flush(self):
        pass

    def isatty(self):
        return True


@pytest.mark.parametrize("quiet", [False, True])
def test_progress_on_a_terminal_only_and_never_with_q(tmp_path, monkeypatch, capsys, quiet):
    import sys
    from caffe2onnx.caffemodel_writer import write_net_weights
    from caffe2onnx.cli import convert_cmd, main
    net = _small_net(tmp_path)
    write_net_weights(tmp_path / "n.caffemodel", caffe2onnx.load(net, random_weights=0))
    monkeypatch.setattr(convert_cmd, "_BIG_MODEL_BYTES", 0)  # the real threshold is 100 MB
    args = ["convert", str(net), str(tmp_path / "n.caffemodel"), "-o", str(tmp_path / "p.onnx")] + ["-q"] * quiet
    assert main(args) == 0
    assert capsys.readouterr().err == ""  # not a terminal: silent
    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    assert main(args) == 0
    if quiet:
        assert terminal.text == ""
    else:
        assert "writing weights" in terminal.text and "ETA" in terminal.text and "wrote" in terminal.text
