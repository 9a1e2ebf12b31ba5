"""BVLC GoogLeNet end to end: the generated deploy.prototxt, parity with real Caffe, classify.py.

Parity uses seeded random weights written as a caffemodel and bound by layer
name. Reference numbers come from real Caffe: live pycaffe when installed,
otherwise ``tests/golden/googlenet.npz``, which ``tests/regen_googlenet_golden.py``
(or ``tests/regen_golden.py``) writes with real Caffe: the input, ``prob``, a
few intermediate blobs, and a digest of the seeded weights they come from.

The input is standard normal: logits stay moderate (|x| < 25), so ``prob``
has a wide margin under 1e-5, while the LRNs still change their input by
1e-3..2e-3 of its range, ten times the 1e-4 blob tolerance.
"""
from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest

import caffe2onnx
from caffe2onnx.caffemodel_writer import write_net_weights
from caffe2onnx.converter import build_model, check_model, convert, convert_file, max_opset, save_model
from caffe2onnx.parser.text import read_prototxt
from caffe2onnx.validators.caffe_reference import blobs_for_net, caffe_available, run_caffe
from caffe2onnx.validators.onnx_runner import expose_tensors, run_onnx

from harness import REGEN, ROOT, assert_close, corpus, seeded_digest

EXAMPLE = ROOT / "examples" / "googlenet"
DEPLOY = EXAMPLE / "deploy.prototxt"
GOLDEN = Path(__file__).parent / "golden" / "googlenet.npz"
SHAPES = {"data": (1, 3, 224, 224)}
WEIGHT_SEED, INPUT_SEED = 0, 1
OPSETS = sorted({11, 17, max_opset()})
# Small blobs along the whole depth, kept in the golden file (the input and prob always are).
GOLDEN_BLOBS = ("pool2/3x3_s2", "inception_4e/output", "inception_5b/output", "pool5/7x7_s1",
                "loss3/classifier")


def _module(name: str):
    spec = importlib.util.spec_from_file_location(f"googlenet_{name}", EXAMPLE / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def seeded_net():
    return caffe2onnx.load(DEPLOY, random_weights=WEIGHT_SEED, input_shapes=SHAPES)


def seeded_input() -> np.ndarray:
    return np.random.default_rng(INPUT_SEED).standard_normal(SHAPES["data"]).astype(np.float32)


def live_reference(net, caffemodel: Path) -> tuple[dict, dict]:
    """(inputs, real Caffe's blobs by tensor name) for the seeded weights already written to caffemodel."""
    inputs = {"data": seeded_input()}
    return inputs, blobs_for_net(net, run_caffe(DEPLOY, caffemodel, inputs))


def write_golden(path: Path, net, inputs: dict, blobs: dict) -> None:
    keep = {k: blobs[k] for k in ("prob", *GOLDEN_BLOBS)}
    path.parent.mkdir(exist_ok=True)
    np.savez_compressed(path, digest=np.array(seeded_digest(net)), numpy_version=np.array(np.__version__),
                        **{f"in/{k}": v for k, v in inputs.items()}, **{f"out/{k}": v for k, v in keep.items()})


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """(net bound to the caffemodel, inputs, real Caffe's blobs, "caffe" or "golden", caffemodel)."""
    tmp = tmp_path_factory.mktemp("googlenet")
    seeded = seeded_net()
    caffemodel = tmp / "googlenet.caffemodel"
    write_net_weights(caffemodel, seeded)
    if caffe_available():
        inputs, blobs = live_reference(seeded, caffemodel)
        if REGEN:  # tests/regen_golden.py rewrites every golden file, this one included
            write_golden(GOLDEN, seeded, inputs, blobs)
        source = "caffe"
    else:
        if not GOLDEN.exists():
            pytest.skip("real Caffe is not installed and tests/golden/googlenet.npz is absent")
        with np.load(GOLDEN, allow_pickle=False) as g:
            if str(g["digest"]) != seeded_digest(seeded):
                pytest.skip(f"numpy {np.__version__}'s default_rng produced other seeded weights than the ones "
                            f"real Caffe ran for the golden file (numpy {g['numpy_version']}), or caffe2onnx's "
                            "random-weight scheme changed; rerun "
                            "tests/regen_googlenet_golden.py where Caffe is installed")
            inputs = {k[3:]: g[k] for k in g.files if k.startswith("in/")}
            blobs = {k[4:]: g[k] for k in g.files if k.startswith("out/")}
        source = "golden"
    net = caffe2onnx.load(DEPLOY, caffemodel, input_shapes=SHAPES)
    return net, inputs, blobs, source, caffemodel


def test_deploy_matches_bvlc_layer_by_layer():
    ours = read_prototxt(DEPLOY)
    bvlc = read_prototxt(corpus("bvlc_caffe/models/bvlc_googlenet/deploy.prototxt"))
    assert ours.name == bvlc.name
    assert [l.name for l in ours.layer] == [l.name for l in bvlc.layer]
    for a, b in zip(ours.layer, bvlc.layer):
        assert a == b, f"layer {a.name} differs from BVLC's:\n{a}\nvs\n{b}"
    assert ours == bvlc


def test_generator_reproduces_committed_file():
    assert _module("make_deploy").render() == DEPLOY.read_text(), \
        "examples/googlenet/deploy.prototxt is stale: run python examples/googlenet/make_deploy.py"


def test_deploy_shapes_and_parameter_count():
    net = caffe2onnx.load(DEPLOY)
    assert net.inputs == ("data",) and net.outputs == ("prob",)
    assert net.shape("data") == (10, 3, 224, 224) and net.shape("prob") == (10, 1000)
    assert net.shape("inception_5b/output") == (10, 1024, 7, 7)
    assert sum(int(np.prod(s)) for l in net.layers for s in l.weight_shapes) == 6_998_552


def _compare(net, model, inputs, blobs, source: str, opset: int) -> None:
    """prob within 1e-5 absolute; every other blob within 1e-4 of its largest magnitude."""
    model = expose_tensors(model, net.tensors, {n: t.shape for n, t in net.tensors.items()})
    got, _ = run_onnx(model, inputs, "cpu")
    got.update(inputs)
    prob_diff = float(np.abs(got["prob"] - blobs["prob"]).max())
    assert prob_diff <= 1e-5, f"prob differs from real Caffe ({source}) by {prob_diff:.3g} at opset {opset}"
    assert np.argmax(got["prob"]) == np.argmax(blobs["prob"])
    compared = [n for n in net.tensors if n in blobs]
    assert len(compared) >= (len(net.tensors) if source == "caffe" else len(GOLDEN_BLOBS) + 1)
    assert_close(got, blobs, compared, max_abs=1e-4, mean_abs=1e-4, relative=True)


@pytest.mark.parametrize("opset", OPSETS)
def test_parity_with_real_caffe(reference, opset):
    net, inputs, blobs, source, _ = reference
    model = build_model(net, opset=opset)
    check_model(model)
    _compare(net, model, inputs, blobs, source, opset)


def test_converted_file_matches_real_caffe(reference, tmp_path):
    """The file the CLI writes (weights streamed by convert_file), read back with onnx.load."""
    net, inputs, blobs, source, caffemodel = reference
    out = tmp_path / "googlenet.onnx"
    convert_file(out, DEPLOY, caffemodel, input_shapes=SHAPES)
    _compare(net, onnx.load(out), inputs, blobs, source, 17)


def test_preprocess_is_caffes():
    cls = _module("classify")
    rgb = np.zeros((2, 3, 3), np.uint8)
    rgb[..., 0], rgb[..., 1], rgb[..., 2] = 10, 20, 30  # R, G, B
    rgb[1, 2] = (200, 100, 0)
    x = cls.preprocess(rgb)
    assert x.shape == (1, 3, 2, 3) and x.dtype == np.float32
    np.testing.assert_array_equal(x[0, :, 0, 0], [30 - 104, 20 - 117, 10 - 123])  # B, G, R planes
    np.testing.assert_array_equal(x[0, :, 1, 2], [0 - 104, 100 - 117, 200 - 123])


def test_classify_script(tmp_path):
    pil = pytest.importorskip("PIL.Image", reason="classify.py needs Pillow")
    model_path = tmp_path / "googlenet.onnx"
    model = convert(DEPLOY, random_weights=WEIGHT_SEED, input_shapes=SHAPES)
    save_model(model, model_path)
    image = tmp_path / "flat.png"
    pil.new("RGB", (40, 30), (10, 20, 30)).save(image)  # flat colour: resizing keeps every pixel
    labels = tmp_path / "labels.txt"
    labels.write_text("".join(f"n{i:08d} class number {i}\n" for i in range(1000)))
    r = subprocess.run([sys.executable, str(EXAMPLE / "classify.py"), str(model_path), str(image),
                        "--labels", str(labels), "--top", "5"], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.strip().splitlines()
    assert len(lines) == 5, r.stdout
    # The same input built by hand, run directly.
    x = np.empty((1, 3, 224, 224), np.float32)
    x[0, 0], x[0, 1], x[0, 2] = 30 - 104, 20 - 117, 10 - 123
    probs, _ = run_onnx(model, {"data": x}, "cpu")
    want = np.argsort(-probs["prob"][0], kind="stable")[:5]
    for rank, (line, idx) in enumerate(zip(lines, want), 1):
        assert line.startswith(f"{rank}. ") and f"class {idx:4d}  n{idx:08d} class number {idx}" in line, line
        assert abs(float(line.split()[1]) - probs["prob"][0, idx]) < 2e-6


def test_classify_without_pillow_says_so(tmp_path, monkeypatch):
    cls = _module("classify")
    monkeypatch.setitem(sys.modules, "PIL", None)  # makes "from PIL import Image" raise ImportError
    with pytest.raises(SystemExit, match="Pillow"):
        cls.load_rgb(tmp_path / "x.png")
