"""The generic parity helper behind the per-layer tests.

A case is a small prototxt plus input shapes. The helper fills seeded random
weights, writes them as a caffemodel, gets real Caffe's blobs (live pycaffe
in a subprocess when installed, otherwise the golden file real Caffe wrote
for that case), converts through the caffemodel at the requested opset, runs
onnxruntime on CPU and compares every tensor.

Golden files: ``tests/golden/<case>.npz`` with the inputs (``in/NAME``), the
weights (``w/LAYER/I``) and real Caffe's blobs (``out/TENSOR``). They are
written by ``python tests/regen_golden.py`` (which runs the suite with real
Caffe and CAFFE2ONNX_REGEN_GOLDEN=1).
"""
from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

import caffe2onnx
from caffe2onnx.caffemodel_writer import write_caffemodel, write_net_weights
from caffe2onnx.converter import build_model, check_model, max_opset
from caffe2onnx.validators.caffe_reference import blobs_for_net, caffe_available, run_caffe
from caffe2onnx.validators.numpy_ref import run_numpy
from caffe2onnx.validators.onnx_runner import expose_tensors, run_onnx

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
CORPUS = SHARED / "corpus"
GOLDEN = Path(__file__).parent / "golden"
OPSETS = sorted({11, 13, 17, max_opset()})
REGEN = os.environ.get("CAFFE2ONNX_REGEN_GOLDEN") == "1"


def corpus(rel: str) -> Path:
    path = CORPUS / rel
    if not path.exists():
        pytest.skip(f"shared corpus file {rel} not present (../shared/corpus is absent in a user checkout)")
    return path


def live_caffe() -> bool:
    return caffe_available()


@dataclass
class Reference:
    inputs: dict[str, np.ndarray]
    weights: dict[str, list[np.ndarray]]
    blobs: dict[str, np.ndarray]  # by tensor name of the loaded Net
    source: str  # "caffe" (live) or "golden"


def _golden_path(case_id: str) -> Path:
    return GOLDEN / (re.sub(r"[^A-Za-z0-9_.-]+", "_", case_id) + ".npz")


def reference(tmp_path: Path, case_id: str, prototxt: str, input_shapes: dict[str, tuple],
              seed: int = 0, input_scale: float = 1.0, tweak_weights=None) -> tuple[Path, Path, Reference]:
    """Writes the case's prototxt and caffemodel into tmp_path and returns real Caffe's blobs.

    ``tweak_weights(weights)`` may replace entries of {layer: [blobs]} before they are written
    (e.g. a BatchNorm moving-average factor other than 1)."""
    net_path = tmp_path / "net.prototxt"
    net_path.write_text(prototxt)
    model_path = tmp_path / "net.caffemodel"
    golden = _golden_path(case_id)
    if live_caffe():
        net = caffe2onnx.load(net_path, random_weights=seed, input_shapes=input_shapes)
        weights = {l.name: list(l.weights) for l in net.layers if l.weights}
        if tweak_weights is not None:
            tweak_weights(weights)
        rng = np.random.default_rng(seed + 1)
        inputs = {n: (rng.standard_normal(net.shape(n)) * input_scale).astype(np.float32) for n in net.inputs}
        _write_weights(model_path, net, weights)
        blobs = blobs_for_net(net, run_caffe(net_path, model_path, inputs))
        if REGEN:
            GOLDEN.mkdir(exist_ok=True)
            np.savez_compressed(golden, **{f"in/{k}": v for k, v in inputs.items()},
                                **{f"w/{l}/{i}": w for l, ws in weights.items() for i, w in enumerate(ws)},
                                **{f"out/{k}": v for k, v in blobs.items()})
        return net_path, model_path, Reference(inputs, weights, blobs, "caffe")
    if not golden.exists():
        pytest.skip(f"real Caffe is not installed and there is no golden file for {case_id}")
    with np.load(golden, allow_pickle=False) as g:
        inputs = {k[3:]: g[k] for k in g.files if k.startswith("in/")}
        blobs = {k[4:]: g[k] for k in g.files if k.startswith("out/")}
        weights: dict[str, list[np.ndarray]] = {}
        for k in sorted((k for k in g.files if k.startswith("w/")), key=lambda k: int(k.rsplit("/", 1)[1])):
            weights.setdefault(k[2:].rsplit("/", 1)[0], []).append(g[k])
    net = caffe2onnx.load(net_path, input_shapes=input_shapes)
    _write_weights(model_path, net, weights)
    return net_path, model_path, Reference(inputs, weights, blobs, "golden")


def _write_weights(path: Path, net, weights) -> None:
    write_caffemodel(path, ((l.name, l.type, weights.get(l.name, [])) for l in net.layers), net.name)


def onnx_blobs(net, opset: int, inputs: dict[str, np.ndarray], all_tensors: bool = True) -> dict[str, np.ndarray]:
    model = build_model(net, opset=opset)
    check_model(model)
    if all_tensors:
        model = expose_tensors(model, net.tensors, {n: t.shape for n, t in net.tensors.items()})
    out, _ = run_onnx(model, inputs, "cpu")
    return {**inputs, **out}


def numpy_blobs(net, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Every tensor from the built-in NumPy reference of Caffe's forward pass."""
    return run_numpy(net, inputs)


def assert_close(got: dict[str, np.ndarray], want: dict[str, np.ndarray], names, *,
                 max_abs: float = 1e-4, mean_abs: float = 1e-5, relative: bool = False,
                 what: str = "ONNX") -> None:
    """Max and mean abs diff per tensor; ``relative`` divides by the reference's max magnitude."""
    failures = []
    for name in names:
        if name not in want:
            continue
        a, b = np.asarray(got[name], np.float64), np.asarray(want[name], np.float64)
        assert a.shape == b.shape, f"{name}: shape {a.shape} vs Caffe {b.shape}"
        nan_a, nan_b = np.isnan(a), np.isnan(b)
        if (nan_a != nan_b).any():  # a NaN would otherwise slip through every comparison below
            failures.append(f"{name}: NaN at {int((nan_a != nan_b).sum())} position(s) where the other side has none")
            continue
        a, b = np.where(nan_a, 0, a), np.where(nan_b, 0, b)
        scale = max(float(np.abs(b).max()), 1e-30) if relative else 1.0
        mx, mean = float(np.abs(a - b).max()) / scale, float(np.abs(a - b).mean()) / scale
        if mx > max_abs or mean > mean_abs:
            failures.append(f"{name}: max abs diff {mx:.3g} (limit {max_abs}), mean {mean:.3g} (limit {mean_abs})")
    assert not failures, f"{what} differs from real Caffe:\n" + "\n".join(failures)


def check_case(tmp_path: Path, case_id: str, prototxt: str, input_shapes: dict[str, tuple],
               opsets=OPSETS, seed: int = 0, max_abs: float = 1e-4, mean_abs: float = 1e-5,
               input_scale: float = 1.0, tweak_weights=None) -> None:
    """The whole round trip for one case at each opset; every tensor compared."""
    net_path, model_path, ref = reference(tmp_path, case_id, prototxt, input_shapes, seed, input_scale,
                                          tweak_weights)
    net = caffe2onnx.load(net_path, model_path, input_shapes=input_shapes)
    for opset in opsets:
        got = onnx_blobs(net, opset, ref.inputs)
        assert_close(got, ref.blobs, net.tensors, max_abs=max_abs, mean_abs=mean_abs)
    assert_close(numpy_blobs(net, ref.inputs), ref.blobs, net.tensors, max_abs=max_abs, mean_abs=mean_abs,
                 what="NumPy reference")


def reshaped_prototxt(src: Path, dst: Path, shapes: dict[str, tuple]) -> Path:
    """A copy of a prototxt whose declared input shapes are replaced (so Caffe builds it at that size)."""
    from google.protobuf import text_format
    from caffe2onnx.parser.text import read_prototxt
    from caffe2onnx.parser.upgrade import upgrade_net

    param = read_prototxt(src)
    upgrade_net(param, str(src))
    for layer in param.layer:
        if layer.type == "Input":
            for i, top in enumerate(layer.top):
                if top in shapes:
                    while len(layer.input_param.shape) <= i:
                        layer.input_param.shape.add()
                    del layer.input_param.shape[i].dim[:]
                    layer.input_param.shape[i].dim.extend(shapes[top])
    dst.write_text(text_format.MessageToString(param))
    return dst


def seeded_digest(net, inputs: dict[str, np.ndarray] | None = None) -> str:
    """sha256 of every layer's name and weight bytes (and the inputs): a golden file is only
    used with the seeded weights and inputs it was computed from."""
    h = hashlib.sha256()
    for layer in net.layers:
        for i, w in enumerate(layer.weights):
            h.update(f"{layer.name}/{i}{w.shape}".encode())
            h.update(np.ascontiguousarray(w, "<f4").tobytes())
    for name, value in sorted((inputs or {}).items()):
        h.update(name.encode())
        h.update(np.ascontiguousarray(value, "<f4").tobytes())
    return h.hexdigest()


def check_dynamic_batch(tmp_path: Path, prototxt: str, opset: int, seed: int = 0, batches=(1, 3)) -> None:
    """A --dynamic-batch model gives real Caffe's numbers, every tensor, at each batch size."""
    if not live_caffe():
        pytest.skip("real Caffe (pycaffe) is not installed; this check runs it at several batch sizes")
    net_path, weights = tmp_path / "net.prototxt", tmp_path / "net.caffemodel"
    net_path.write_text(prototxt)
    write_net_weights(weights, caffe2onnx.load(net_path, random_weights=seed))
    net = caffe2onnx.load(net_path, weights)
    model = build_model(net, opset=opset, dynamic_batch=True)
    check_model(model)
    assert model.graph.input[0].type.tensor_type.shape.dim[0].dim_param
    model = expose_tensors(model, net.tensors, {n: ("N", *t.shape[1:]) for n, t in net.tensors.items()})
    rng = np.random.default_rng(opset)
    for batch in batches:
        inputs = {n: rng.standard_normal((batch, *net.shape(n)[1:])).astype(np.float32) for n in net.inputs}
        want = blobs_for_net(net, run_caffe(net_path, weights, inputs))
        got, _ = run_onnx(model, inputs)
        assert all(got[o].shape[0] == batch for o in net.outputs)
        assert_close({**inputs, **got}, want, net.tensors)


def input_layer(shape, name: str = "data") -> str:
    dims = " ".join(f"dim: {d}" for d in shape)
    return f'layer {{ name: "input" type: "Input" top: "{name}" input_param {{ shape {{ {dims} }} }} }}\n'
