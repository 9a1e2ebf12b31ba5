"""Non-spatial layers on the external cases real Caffe wrote (OpenCV's Caffe layer test data).

Each ``layer_X.npy`` is real Caffe's blob ``output`` for the input ``blob.npy``.
"""
import numpy as np
import pytest

import caffe2onnx
from caffe2onnx.converter import build_model, check_model
from caffe2onnx.validators.onnx_runner import run_onnx
from harness import OPSETS, corpus

# case -> whether it ships a caffemodel
CASES = {"layer_inner_product": True, "layer_mvn": False, "layer_softmax": False}


def _diff(got: np.ndarray, want: np.ndarray) -> None:
    assert got.shape == want.shape, (got.shape, want.shape)
    d = np.abs(got.astype(np.float64) - want)
    assert np.isfinite(got).all() and d.mean() <= 1e-5 and d.max() <= 1e-4, (d.mean(), d.max())


def _run(net, opset: int, blob: np.ndarray, dynamic_batch: bool = False) -> np.ndarray:
    model = build_model(net, opset=opset, dynamic_batch=dynamic_batch)
    check_model(model)
    out, _ = run_onnx(model, {"input": blob})
    return out[net.outputs[0]]


@pytest.mark.parametrize("opset", OPSETS)
@pytest.mark.parametrize("case", sorted(CASES))
def test_corpus_case(case, opset):
    prototxt = corpus(f"caffe_layer_cases/{case}.prototxt")
    model = corpus(f"caffe_layer_cases/{case}.caffemodel") if CASES[case] else None
    net = caffe2onnx.load(prototxt, model)  # legacy input: + input_dim declare the shape
    blob = np.load(corpus("caffe_layer_cases/blob.npy"))
    assert net.inputs == ("input",) and net.shape("input") == blob.shape
    want = np.load(corpus(f"caffe_layer_cases/{case}.npy"))
    _diff(_run(net, opset, blob), want)
    # Every sample alone through a dynamic-batch model gives Caffe's numbers for that sample.
    for rows in (slice(0, 1), slice(1, 2)):
        _diff(_run(net, opset, blob[rows], dynamic_batch=True), want[rows])


@pytest.mark.parametrize("opset", OPSETS)
def test_reshape_and_slice_routines(opset):
    """Split, Slice, Concat, Reshape and Flatten that reassemble the input: output = input, flattened."""
    prototxt = corpus("caffe_layer_cases/reshape_and_slice_routines.prototxt")
    blob = np.load(corpus("caffe_layer_cases/blob.npy"))
    net = caffe2onnx.load(prototxt, input_shapes={"input": blob.shape})  # it declares no shape
    # Caffe makes every unconsumed top a net output: the output and the unused slices.
    assert set(net.outputs) == {"output", "dummy_slice_0_1", "dummy_slice_1_0", "dummy_slice_1_2"}
    assert net.shape("dummy_reshape") == (2, 6, 1, 1, 1, 1, 75, 113)
    model = build_model(net, opset=opset)
    check_model(model)
    out, _ = run_onnx(model, {"input": blob})
    assert out["output"].shape == (2, 6 * 75 * 113)
    np.testing.assert_array_equal(out["output"], blob.reshape(2, -1))
    np.testing.assert_array_equal(out["dummy_slice_0_1"], blob[:, 1:2])
    np.testing.assert_array_equal(out["dummy_slice_1_0"], blob[:, :1])
