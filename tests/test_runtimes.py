"""``validate --runtime``: OpenVINO (CPU, f32) and onnx's ReferenceEvaluator against real Caffe.

Every corpus net that converts (test_architectures.NETS) is validated on each installed
runtime against the reference (real Caffe, or the NumPy reference where Caffe is absent),
every blob within the CPU tolerances, at the smallest input its pooling windows allow:
32x32 .. 64x64 for most; ResNet-50/101/152 need 224x224 and the Inception family 299x299
(fixed 7x7 / 8x8 pools): ResNet-50 always runs, the other five (~75 s on OpenVINO here)
only with CAFFE2ONNX_ALL_RUNTIME_NETS=1 (they were run so for the README's table). The
reference evaluator is pure NumPy: it runs the small nets, ResNet-50 (~5 s) and GoogLeNet
(~17 s, slow).
The onnx LRN bug (onnx issue 7805) is checked against onnxruntime's LRN kernel.
"""
from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

import caffe2onnx
from caffe2onnx.caffemodel_writer import write_net_weights
from caffe2onnx.converter import build_model, max_opset
from caffe2onnx.validators.check import validate
from caffe2onnx.validators.report import to_json, to_junit
from caffe2onnx.validators.runtimes import RuntimeUnavailable, get_runtime, require
from caffe2onnx.validators.runtimes.reference_rt import lrn_affected
from caffe2onnx.validators.runtimes.reference_worker import spec_lrn
from harness import CORPUS, ROOT
from test_architectures import NETS

HAS = {"openvino": importlib.util.find_spec("openvino") is not None, "reference": True}
# the smallest square input each net's fixed pooling windows allow (found by shape inference)
SIZE = {"alexnet": 64, "caffenet": 64, "rcnn_ilsvrc13": 64, "inception_resnet_v2": 299, "inception_v3": 299,
        "xception": 299, "resnet50": 224, "resnet101": 224, "resnet152": 224}
HEAVY = {n for n, s in SIZE.items() if s >= 224} - {"resnet50"}
ALL_NETS = os.environ.get("CAFFE2ONNX_ALL_RUNTIME_NETS") == "1"
REFERENCE_NETS = {"squeezenet_1.1", "resnet18", "mobilenet_v1", "alexnet", "resnet50"}
GOOGLENET = ROOT / "examples" / "googlenet" / "deploy.prototxt"


def _runtime(rt: str):
    return pytest.param(rt, marks=pytest.mark.skipif(not HAS[rt], reason=f"{rt} is not installed here "
                                                                             "(pip install 'caffe2onnx[openvino]')"))


def _cases():
    for name in sorted(NETS):
        for rt in ("openvino", "reference"):
            if rt == "reference" and name not in REFERENCE_NETS:
                continue
            marks = [pytest.mark.skipif(not HAS[rt], reason=f"{rt} is not installed here")]
            if name in HEAVY:
                marks += [pytest.mark.slow, pytest.mark.skipif(not ALL_NETS, reason=(
                    "224/299-pixel net: set CAFFE2ONNX_ALL_RUNTIME_NETS=1 to run it (~15 s each)"))]
            yield pytest.param(rt, name, marks=marks, id=f"{rt}-{name}")


def _validated(net, model, rt: str, **kw):
    r = validate(None, None, model, net=net, runtime=rt, **kw)
    worst = max(r.blobs, key=lambda b: b.max_rel)
    print(f"{r.net} on {r.runtime} {r.runtime_version} ({r.provider}) vs {r.reference}: {len(r.blobs)} blobs, "
          f"worst max rel {worst.max_rel:.2e} ({worst.tensor}), {r.seconds}")
    assert r.passed, [(b.tensor, b.max_abs, b.max_rel) for b in r.failures][:5]
    assert r.runtime == rt and r.runtime_version and r.atol == 1e-4 and r.rtol == 1e-4
    return r


@pytest.mark.parametrize("rt,name", list(_cases()))
def test_corpus_net_on_runtime(rt, name):
    rel, declared = NETS[name]
    path = CORPUS / rel
    if not path.exists():
        pytest.skip(f"shared corpus file {rel} not present")
    size = SIZE.get(name, 32)
    input_name = caffe2onnx.load(path).inputs[0]
    net = caffe2onnx.load(path, random_weights=0, input_shapes={input_name: (1, declared[1], size, size)})
    _validated(net, build_model(net, opset=max_opset()), rt)


@pytest.mark.slow
@pytest.mark.parametrize("rt", [_runtime("openvino"), _runtime("reference")])
def test_googlenet_on_runtime(rt):
    net = caffe2onnx.load(GOOGLENET, random_weights=0, input_shapes={"data": (1, 3, 224, 224)})
    r = _validated(net, build_model(net, opset=11), rt)
    report = to_json(r)
    assert report["runtime"] == {"name": rt, "version": r.runtime_version}
    assert f'name="runtime" value="{rt}"' in to_junit(r)


def test_lrn_node_on_reference_evaluator(tmp_path):
    """lean=False keeps ONNX LRN nodes: the evaluator must run them right (batch 1 < channels)."""
    from caffe2onnx.converter import build
    path = tmp_path / "lrn.prototxt"
    path.write_text('name: "lrn" input: "data" input_shape { dim: 1 dim: 6 dim: 5 dim: 5 }\n'
             'layer { name: "norm" type: "LRN" bottom: "data" top: "norm" '
                    'lrn_param { local_size: 5 alpha: 0.5 beta: 0.75 k: 2 } }\n')
    net = caffe2onnx.load(path)
    model = build(net, opset=11, lean=False).to_proto()
    assert [n.op_type for n in model.graph.node] == ["LRN"]
    r = _validated(net, model, "reference")
    assert ("LRN per the ONNX spec" in r.runtime_version) == lrn_affected(onnx.__version__)


def _lrn_model(size: int, shape) -> onnx.ModelProto:
    node = helper.make_node("LRN", ["x"], ["y"], size=size, alpha=0.3, beta=0.75, bias=1.5)
    graph = helper.make_graph([node], "lrn", [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, shape)])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


@pytest.mark.parametrize("size,shape", [(5, (1, 7, 3, 4)), (7, (2, 9, 3, 3)), (3, (3, 2, 4, 4)), (1, (1, 3, 2, 2))])
def test_spec_lrn_matches_onnxruntime(size, shape):
    import onnxruntime as ort
    from onnx.reference import ReferenceEvaluator
    model = _lrn_model(size, shape)
    x = np.random.default_rng(size).standard_normal(shape).astype(np.float32) * 3
    want = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    got = ReferenceEvaluator(model, new_ops=[spec_lrn()]).run(None, {"x": x})[0]
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    if lrn_affected(onnx.__version__) and shape[0] < shape[1]:  # the bug this override exists for
        stock = ReferenceEvaluator(model).run(None, {"x": x})[0]
        assert np.abs(stock - want).max() > 1e-3


def test_spec_lrn_even_size_by_hand():
    """onnxruntime refuses even sizes; the spec's window [c - floor((s-1)/2), c + ceil((s-1)/2)], by loops."""
    from onnx.reference import ReferenceEvaluator
    x = np.random.default_rng(4).standard_normal((1, 5, 2, 2)).astype(np.float32)
    want = np.empty_like(x)
    for c in range(5):
        window = (x[:, max(0, c - 1):min(5, c + 3)] ** 2).sum(axis=1)  # size 4: c-1 .. c+2
        want[:, c] = x[:, c] / (1.5 + 0.3 / 4 * window) ** 0.75
    got = ReferenceEvaluator(_lrn_model(4, (1, 5, 2, 2)), new_ops=[spec_lrn()]).run(None, {"x": x})[0]
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_lrn_affected_versions():
    assert lrn_affected("1.16.0") and lrn_affected("1.23.2") and lrn_affected("1.23.2+cpu")
    assert not lrn_affected("1.24.0") and not lrn_affected("2.0")


def test_provider_and_missing_runtime_refused():
    with pytest.raises(RuntimeUnavailable, match="applies to --runtime onnxruntime only"):
        get_runtime("reference").run(_lrn_model(3, (1, 3, 2, 2)), {}, provider="cuda")
    with pytest.raises(RuntimeUnavailable, match="unknown runtime"):
        get_runtime("tvm")
    with pytest.raises(RuntimeUnavailable, match="applies to --runtime onnxruntime only"):  # before any reference
        validate(None, None, _lrn_model(3, (1, 3, 2, 2)), runtime="openvino", provider="auto")
    with pytest.raises(RuntimeUnavailable, match=r"pip install 'caffe2onnx\[openvino\]'"):
        require("no_such_module_caffe2onnx", "openvino", "openvino")


def test_cli_runtime_reference_and_provider_refusal(tmp_path):
    """The CLI path: --runtime names the runtime in the JSON report; --provider cuda elsewhere exits 2."""
    proto = tmp_path / "net.prototxt"
    proto.write_text('name: "tiny" input: "data" input_shape { dim: 1 dim: 3 dim: 4 dim: 4 }\n'
                     'layer { name: "conv" type: "Convolution" bottom: "data" top: "conv" '
                     'convolution_param { num_output: 2 kernel_size: 3 } }\n'
                     'layer { name: "relu" type: "ReLU" bottom: "conv" top: "relu" }\n')
    weights, model = tmp_path / "w.caffemodel", tmp_path / "m.onnx"
    write_net_weights(weights, caffe2onnx.load(proto, random_weights=0))
    run = lambda *a: subprocess.run([sys.executable, "-m", "caffe2onnx.cli", *a], cwd=ROOT, capture_output=True,  # noqa: E731
                                    text=True, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    # external data: each worker reads the weights from the model's folder
    assert run("convert", str(proto), str(weights), "-o", str(model), "--external-data").returncode == 0
    assert Path(f"{model}.data").exists()
    for rt in [rt for rt in ("reference", "openvino") if HAS[rt]]:
        r = run("validate", str(proto), str(weights), str(model), "--runtime", rt, "--reference", "numpy",
                "--json", str(tmp_path / "r.json"))
        assert r.returncode == 0, r.stderr
        assert f"runtime {rt}" in r.stdout
        assert json.loads((tmp_path / "r.json").read_text())["runtime"]["name"] == rt
    r = run("validate", str(proto), str(weights), str(model), "--runtime", "reference", "--provider", "cuda")
    assert r.returncode == 2 and "applies to --runtime onnxruntime only" in r.stderr


@pytest.mark.parametrize("rt", [_runtime("openvino"), _runtime("reference")])
def test_worker_killed_at_time_limit(rt):
    """Each runtime's worker is a killable process: a limit it cannot meet stops it with WorkerTimeout."""
    from caffe2onnx.validators.isolation import WorkerTimeout
    x = np.ones((1, 3, 2, 2), np.float32)
    with pytest.raises(WorkerTimeout, match="time limit of 0.05 s"):
        get_runtime(rt).run(_lrn_model(3, (1, 3, 2, 2)), {"x": x}, timeout=0.05)
    got = get_runtime(rt).run(_lrn_model(3, (1, 3, 2, 2)), {"x": x}, timeout=120)
    assert got.runtime == rt and got.values["y"].shape == (1, 3, 2, 2)
