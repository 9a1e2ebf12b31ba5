"""Whole SSD detectors against real Caffe: MobileNet-SSD (shared corpus) and a face-detector-shaped
SSD (the res10_300x300_ssd layout: 300x300, Normalize on conv4_3, six heads), with detections.

Seeded random weights saturate or flatten the softmax, so the test copies scale the confidence
heads (`*_mbox_conf`) to give unsaturated scores, many above the threshold, and the location heads
(`*_mbox_loc`) to offsets of order 1. Without real Caffe,
``tests/golden/ssd_<name>.npz`` holds Caffe's detections and a digest of the weights and input.
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

import caffe2onnx
from caffe2onnx.caffemodel_writer import write_caffemodel
from caffe2onnx.validators.caffe_reference import blobs_for_net, run_caffe
from detection_cases import assert_detections
from face_ssd import face_ssd_prototxt
from harness import CORPUS, GOLDEN, REGEN, assert_close, live_caffe, numpy_blobs, onnx_blobs, reshaped_prototxt, \
    seeded_digest

MOBILENET = "architectures/mobilenet_ssd/deploy.prototxt"
# name -> (prototxt source, input shape, factors on the confidence and location heads)
NETS = {
    "mobilenet_ssd": (MOBILENET, (1, 3, 300, 300), (0.1, 0.07)),  # > keep_top_k (100) candidates
    "face_ssd": ("face", (1, 3, 300, 300), (0.05, 0.04)),  # fewer than keep_top_k (200)
}


def net_text(source: str) -> str:
    if source == "face":
        return face_ssd_prototxt()
    path = CORPUS / source
    if not path.exists():
        pytest.skip(f"shared corpus file {source} not present")
    return path.read_text()


def detecting_copy(tmp_path: Path, name: str):
    """(prototxt at the input shape, caffemodel, loaded net with weights, input) of a test copy."""
    source, shape, (conf, loc) = NETS[name]
    src = tmp_path / "src.prototxt"
    src.write_text(net_text(source))
    seeded = caffe2onnx.load(src, random_weights=0, input_shapes={"data": shape})
    # location offsets of order 1 as in a trained net (seeded weights give ~15, boxes 100x the image)
    factor = {"conf": np.float32(conf), "loc": np.float32(loc)}
    weights = {l.name: [w * factor[m.group(1)] if (m := re.search(r"_mbox_(conf|loc)$", l.name)) else w
                        for w in l.weights] for l in seeded.layers}
    model = tmp_path / "w.caffemodel"
    write_caffemodel(model, ((l.name, l.type, weights[l.name]) for l in seeded.layers), seeded.name)
    proto = reshaped_prototxt(src, tmp_path / "net.prototxt", {"data": shape})
    net = caffe2onnx.load(proto, model)
    inputs = {"data": np.random.default_rng(1).standard_normal(shape).astype(np.float32)}
    return proto, model, net, inputs


_CACHE: dict[str, tuple] = {}


@pytest.fixture(scope="module")
def ssd(tmp_path_factory):
    """name -> caffe_detections(name), each test copy built and run in Caffe once per module."""
    def get(name: str):
        if name not in _CACHE:
            _CACHE[name] = caffe_detections(tmp_path_factory.mktemp(name), name)
        return _CACHE[name]
    yield get
    _CACHE.clear()


def caffe_detections(tmp_path: Path, name: str):
    """Real Caffe's blobs (live) or its golden detections; with the net and the input."""
    proto, model, net, inputs = detecting_copy(tmp_path, name)
    golden = GOLDEN / f"ssd_{name}.npz"
    if live_caffe():
        want = blobs_for_net(net, run_caffe(proto, model, inputs))
        if REGEN:
            np.savez_compressed(golden, digest=np.array(seeded_digest(net, inputs)),
                                **{f"out/{k}": want[k] for k in net.outputs})
    elif golden.exists():
        with np.load(golden, allow_pickle=False) as g:
            if str(g["digest"]) != seeded_digest(net, inputs):
                pytest.skip("this numpy generates other seeded weights or inputs than the golden file's")
            want = {k[4:]: g[k] for k in g.files if k.startswith("out/")}
    else:
        pytest.skip(f"real Caffe is not installed and there is no golden file for {name}")
    return proto, model, net, inputs, want


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(NETS))
def test_ssd_matches_real_caffe(ssd, name):
    proto, model, net, inputs, want = ssd(name)
    (out,) = net.outputs
    rows = want[out].reshape(-1, 7)
    for what, got in (("ONNX", onnx_blobs(net, 17, inputs, all_tensors=len(want) > 1)),
                      ("NumPy reference", numpy_blobs(net, inputs))):
        assert_detections(got[out], want[out], atol=1e-4, what=what)
        inner = [t for t in net.tensors if t != out]
        assert_close(got, want, inner, max_abs=1e-4, mean_abs=1e-4, relative=True, what=what)
        print(f"{name} {what}: {len(rows)} detections matched, max abs diff {np.abs(got[out] - want[out]).max():.3g}")
    if name == "mobilenet_ssd":
        assert len(rows) == 100 and len(np.unique(rows[:, 1])) > 1  # cut at keep_top_k, several classes
    else:
        assert (rows[:, 1] == 1).all() and 1 < len(rows) < 200


HEADS = ["mbox_loc", "mbox_conf_flatten", "mbox_priorbox"]


@pytest.mark.slow
def test_no_detection_output_exposes_the_heads(ssd):
    """convert(detection_output=False): the graph ends with DetectionOutput's three bottoms, which
    give Caffe's detections when fed to Caffe's DetectionOutput (the NumPy reference of it)."""
    from caffe2onnx.validators.numpy_ref.detection import detection_output
    from caffe2onnx.validators.onnx_runner import run_onnx
    proto, weights, net, inputs, want = ssd("mobilenet_ssd")
    model = caffe2onnx.convert(proto, weights, detection_output=False)
    assert [o.name for o in model.graph.output] == HEADS
    assert not {"NonMaxSuppression", "TopK"} & {n.op_type for n in model.graph.node}
    got, _ = run_onnx(model, inputs)
    ref = numpy_blobs(net, inputs) if not live_caffe() else want
    assert_close(got, ref, HEADS, max_abs=1e-4, mean_abs=1e-5, relative=True)
    print("mobilenet_ssd --no-detection-output: max abs diff " + ", ".join(
        f"{h} {np.abs(got[h] - ref[h]).max():.3g}" for h in HEADS) + f" (vs {'Caffe' if live_caffe() else 'NumPy'})")
    (dets,) = detection_output(net.layer("detection_out"), [got[h] for h in HEADS])
    assert_detections(dets, want["detection_out"], atol=1e-4)


@pytest.mark.slow
@pytest.mark.parametrize("reference", ["caffe", "numpy"])
def test_cli_validate_matches_the_detections(tmp_path, ssd, capsys, reference):
    from caffe2onnx.cli import main
    if reference == "caffe" and not live_caffe():
        pytest.skip("real Caffe (pycaffe) is not installed")
    proto, weights = ssd("mobilenet_ssd")[:2]
    out = tmp_path / "m.onnx"
    assert main(["convert", str(proto), str(weights), "-o", str(out), "-q"]) == 0
    capsys.readouterr()
    assert main(["validate", str(proto), str(weights), str(out), "--reference", reference]) == 0
    text = capsys.readouterr().out
    print(text)
    assert "PASS" in text and re.search(r"detection_out \(DetectionOutput\): (\d+)/\1 detections matched", text)


@pytest.mark.slow
def test_cli_no_detection_output(tmp_path, ssd, capsys):
    from caffe2onnx.cli import main
    proto, weights = ssd("mobilenet_ssd")[:2]
    out = tmp_path / "heads.onnx"
    rc = main(["convert", str(proto), str(weights), "-o", str(out), "--no-detection-output"])
    assert rc == 0, capsys.readouterr().err
    import onnx
    assert [o.name for o in onnx.load(str(out)).graph.output] == HEADS


@pytest.mark.slow
@pytest.mark.parametrize("name", ["mobilenet_ssd", "face_ssd"])
def test_openvino_gives_the_same_detections(tmp_path, ssd, name):
    """The converted model in OpenVINO CPU (f32 inference precision) detects what Caffe and onnxruntime do."""
    ov = pytest.importorskip("openvino", reason="OpenVINO is optional (pip install openvino)")
    from caffe2onnx.validators.onnx_runner import run_onnx
    proto, weights, net, inputs, want = ssd(name)
    model = caffe2onnx.convert(proto, weights)
    path = tmp_path / "m.onnx"
    path.write_bytes(model.SerializeToString())
    compiled = ov.Core().compile_model(str(path), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    got = compiled(inputs)[compiled.output(0)]
    ort, _ = run_onnx(model, inputs)
    for what, dets in (("OpenVINO", got), ("onnxruntime", ort["detection_out"])):
        assert_detections(np.asarray(dets), want["detection_out"], atol=1e-4, what=what)
        print(f"{name} {what}: {want['detection_out'].shape[2]} detections matched, max abs diff "
              f"{np.abs(np.asarray(dets) - want['detection_out']).max():.3g}")
