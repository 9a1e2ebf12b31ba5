"""Shared pieces of the SSD tests: small detection nets, inputs that make detections happen, and
the round trip real Caffe (or its golden file) -> ONNX at each opset + the NumPy reference.

DetectionOutput tops are compared twice: as a set (every Caffe row matched by one of ours, see
``validators.compare.match_detections``) and row by row in Caffe's order.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
import pytest

import caffe2onnx
from caffe2onnx.converter import max_opset
from caffe2onnx.validators.caffe_reference import blobs_for_net, run_caffe
from caffe2onnx.validators.compare import match_detections
from harness import REGEN, _golden_path, _write_weights, assert_close, input_layer, live_caffe, numpy_blobs, onnx_blobs

EDGE_OPSETS = sorted({11, max_opset()})
Inputs = Callable[[caffe2onnx.ir.Net, np.random.Generator], dict]


def inputs_layer(name: str, shape) -> str:
    return input_layer(shape, name).replace('name: "input"', f'name: "in_{name}"')


def num_priors(tmp_path: Path, prior_box: str, fm, img) -> int:
    """How many priors Caffe's rules give this PriorBox on an fm-sized feature map."""
    path = tmp_path / "priors.prototxt"
    path.write_text(inputs_layer("data", img) + inputs_layer("fm", fm) + prior_box)
    return caffe2onnx.load(path).shape("pb")[2] // 4


def detection_net(tmp_path: Path, det: str, *, batch: int = 2, fm=(4, 4), img=(32, 32), classes: int = 4,
                  pb: str = "min_size: 8 max_size: 16 aspect_ratio: 2", share_location: bool = True) -> str:
    """Inputs data (image size), fm (feature map), loc, conf; a PriorBox; the DetectionOutput 'det'."""
    pb += "" if "clip" in pb else " clip: true"  # real Caffe's schema defaults clip to true, weiliu89's to false
    prior_box = (f'layer {{ name: "pb" type: "PriorBox" bottom: "fm" bottom: "data" top: "pb" '
                 f'prior_box_param {{ {pb} }} }}\n')
    data, feat = (batch, 1, *img), (batch, 1, *fm)
    n = num_priors(tmp_path, prior_box, feat, data)
    loc_classes = 1 if share_location else classes
    return (inputs_layer("data", data) + inputs_layer("fm", feat) + inputs_layer("loc", (batch, n * loc_classes * 4))
            + inputs_layer("conf", (batch, n * classes)) + prior_box
            + 'layer { name: "det" type: "DetectionOutput" bottom: "loc" bottom: "conf" bottom: "pb" top: "det" '
            f'detection_output_param {{ num_classes: {classes} share_location: {str(share_location).lower()} '
            f'{det} }} }}\n')


def uniform_conf(loc_scale: float = 0.5, levels: int | None = None) -> Inputs:
    """loc ~ N(0, loc_scale); conf ~ U(0, 1), rounded to `levels` steps for equal scores."""
    def make(net, rng):
        out = {n: np.zeros(net.shape(n), np.float32) for n in net.inputs}  # only their shapes matter
        out["loc"] = (rng.standard_normal(net.shape("loc")) * loc_scale).astype(np.float32)
        conf = rng.uniform(0, 1, net.shape("conf"))
        out["conf"] = (np.round(conf * levels) / levels if levels else conf).astype(np.float32)
        return out
    return make


def reference(tmp_path: Path, case_id: str, prototxt: str, make_inputs: Inputs | None = None, seed: int = 0,
              tweak_weights=None):
    """Like harness.reference, with case-specific inputs; returns (net with weights, inputs, Caffe's blobs)."""
    net_path, model_path = tmp_path / "net.prototxt", tmp_path / "net.caffemodel"
    net_path.write_text(prototxt)
    golden = _golden_path(case_id)
    if live_caffe():
        net = caffe2onnx.load(net_path, random_weights=seed)
        weights = {l.name: list(l.weights) for l in net.layers if l.weights}
        if tweak_weights is not None:
            tweak_weights(weights)
        rng = np.random.default_rng(seed + 1)
        inputs = make_inputs(net, rng) if make_inputs else \
            {n: rng.standard_normal(net.shape(n)).astype(np.float32) for n in net.inputs}
        _write_weights(model_path, net, weights)
        blobs = blobs_for_net(net, run_caffe(net_path, model_path, inputs))
        if REGEN:
            np.savez_compressed(golden, **{f"in/{k}": v for k, v in inputs.items()},
                                **{f"w/{l}/{i}": w for l, ws in weights.items() for i, w in enumerate(ws)},
                                **{f"out/{k}": v for k, v in blobs.items() if k not in inputs})
    elif golden.exists():
        with np.load(golden, allow_pickle=False) as g:
            inputs = {k[3:]: g[k] for k in g.files if k.startswith("in/")}
            blobs = {**inputs, **{k[4:]: g[k] for k in g.files if k.startswith("out/")}}
            weights: dict[str, list[np.ndarray]] = {}
            for k in sorted((k for k in g.files if k.startswith("w/")), key=lambda k: int(k.rsplit("/", 1)[1])):
                weights.setdefault(k[2:].rsplit("/", 1)[0], []).append(g[k])
        _write_weights(model_path, caffe2onnx.load(net_path), weights)
    else:
        pytest.skip(f"real Caffe is not installed and there is no golden file for {case_id}")
    return caffe2onnx.load(net_path, model_path), inputs, blobs


def assert_detections(got: np.ndarray, want: np.ndarray, atol: float = 1e-5, what: str = "ONNX") -> None:
    """Same rows as Caffe: as a set within atol, and in Caffe's order (image, label, NMS order)."""
    m = match_detections(got, want, atol)
    assert m.matched == m.reference == m.got, f"{what}: {m.note()}"
    assert got.shape == want.shape and np.abs(got - want).max() <= atol, f"{what}: rows in another order"


def check_detection_case(tmp_path: Path, case_id: str, prototxt: str, make_inputs: Inputs | None = None,
                         opsets=EDGE_OPSETS, atol: float = 1e-5, tweak_weights=None,
                         convert: str | None = None) -> np.ndarray:
    """Every tensor of ONNX (each opset) and of the NumPy reference against Caffe; returns Caffe's detections.

    ``convert``: the net we convert, when it differs from the one Caffe runs (where real Caffe's
    schema deviates from weiliu89's, Caffe runs the net with the original's meaning spelled out)."""
    net, inputs, want = reference(tmp_path, case_id, prototxt, make_inputs, tweak_weights=tweak_weights)
    if convert is not None:
        (tmp_path / "convert.prototxt").write_text(convert)
        net = caffe2onnx.load(tmp_path / "convert.prototxt", tmp_path / "net.caffemodel")
    dets = [t for l in net.layers if l.type == "DetectionOutput" for t in l.outputs]
    others = [t for t in net.tensors if t not in dets]
    for what, got in [(f"ONNX opset {o}", onnx_blobs(net, o, inputs)) for o in opsets] + \
                     [("NumPy reference", numpy_blobs(net, inputs))]:
        assert_close(got, want, others, what=what)
        for t in dets:
            assert_detections(got[t], want[t], atol, what)
    return want[dets[0]] if dets else None
