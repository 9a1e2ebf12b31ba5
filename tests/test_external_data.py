"""Models over protobuf's 2 GiB limit: ONNX external data, written by the streaming path.

A synthetic caffemodel of 2.15 GB (eight 8192x8192 InnerProducts; real Caffe
cannot read a caffemodel that large, so the NumPy reference of Caffe's forward
pass is the judge) is generated on the fly, converted, validated, and removed:
the test needs about 4.3 GB of disk for a few seconds.
"""
from __future__ import annotations

import contextlib
import io
import shutil

import numpy as np
import onnx
import pytest

from caffe2onnx import proto
from caffe2onnx.caffemodel_writer import _blob_header
from caffe2onnx.cli import main
from caffe2onnx.validators.check import validate
from caffe2onnx.wire import len_header

LAYERS, N, K = 8, 8192, 8192  # 8 x 256 MiB of weights: 2.0 GiB, just over the limit with the framing
PERIOD = 5_000_011  # weights repeat with a period that is no power of two, so a misplaced range shows


def _prototxt() -> str:
    text = f'layer {{ name: "data" type: "Input" top: "data" input_param {{ shape {{ dim: 1 dim: {K} }} }} }}\n'
    for i in range(LAYERS):
        text += (f'layer {{ name: "ip{i}" type: "InnerProduct" bottom: "data" top: "ip{i}" '
                 f'inner_product_param {{ num_output: {N} bias_term: false }} }}\n')
    return text


def _write_caffemodel(path) -> None:
    """Streams the caffemodel: each layer's weight is a seeded chunk repeated, scaled per layer."""
    chunk = np.random.default_rng(0).standard_normal(PERIOD).astype("<f4") * np.float32(0.01)
    nbytes = N * K * 4
    with open(path, "wb") as f:
        for i in range(LAYERS):
            head = proto.LayerParameter(name=f"ip{i}", type="InnerProduct").SerializeToString()
            blob_head = _blob_header((N, K), nbytes)
            f.write(len_header(100, len(head) + len(len_header(7, len(blob_head) + nbytes)) + len(blob_head) + nbytes))
            f.write(head + len_header(7, len(blob_head) + nbytes) + blob_head)
            scaled, left = chunk * np.float32(i + 1), nbytes // 4
            while left:
                part = scaled[:min(left, PERIOD)]
                f.write(part.tobytes())
                left -= part.size


@pytest.mark.slow
def test_model_over_2gib_goes_to_external_data_and_validates(tmp_path):
    work = tmp_path / "big"
    work.mkdir()
    try:
        net, weights, out = work / "net.prototxt", work / "net.caffemodel", work / "net.onnx"
        net.write_text(_prototxt())
        _write_caffemodel(weights)
        assert weights.stat().st_size > 2**31
        err = io.StringIO()
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            assert main(["convert", str(net), str(weights), "-o", str(out)]) == 0
        # chosen automatically, with one line saying so (no progress: stderr is not a terminal)
        lines = err.getvalue().splitlines()
        assert len(lines) == 1 and "2 GiB limit" in lines[0] and "net.onnx.data" in lines[0], lines
        data = work / "net.onnx.data"
        assert out.stat().st_size < 1 << 20 and data.stat().st_size >= LAYERS * N * K * 4
        onnx.checker.check_model(str(out))  # the path form checks the external-data references
        model = onnx.load(str(out), load_external_data=False)
        assert all(t.data_location == onnx.TensorProto.EXTERNAL for t in model.graph.initializer)
        # the bytes are the caffemodel's, at the offsets the model names
        t = model.graph.initializer[3]
        info = {e.key: e.value for e in t.external_data}
        with open(data, "rb") as f:
            f.seek(int(info["offset"]) + 4 * 12345)
            got = np.frombuffer(f.read(16), "<f4")
        chunk = np.random.default_rng(0).standard_normal(PERIOD).astype("<f4") * np.float32(0.01)
        np.testing.assert_array_equal(got, chunk[12345:12349] * np.float32(4))
        result = validate(net, weights, out, reference="numpy")
        assert result.passed and len(result.blobs) == LAYERS, [b.tensor for b in result.failures]
    finally:
        shutil.rmtree(work)


def test_external_data_flag_on_a_small_model(tmp_path):
    """--external-data on a small model: same numbers, and the file holds no weight bytes."""
    net = tmp_path / "n.prototxt"
    net.write_text('layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 1 dim: 3 dim: 8 dim: 8 } } }\n'
                   'layer { name: "c" type: "Convolution" bottom: "data" top: "c" convolution_param { num_output: 4 '
                   'kernel_size: 3 } }\nlayer { name: "bn" type: "BatchNorm" bottom: "c" top: "c" }\n')
    out = tmp_path / "n.onnx"
    assert main(["convert", str(net), "--random-weights", "0", "-o", str(out), "--external-data", "-q"]) == 0
    assert (tmp_path / "n.onnx.data").stat().st_size > 4 * 27 * 4
    model = onnx.load(str(out), load_external_data=False)
    assert model.graph.initializer and all(not t.raw_data for t in model.graph.initializer)
    assert validate(net, None, out, reference="numpy", net=_load(net)).passed


def _load(path):
    import caffe2onnx
    return caffe2onnx.load(path, random_weights=0)
