"""Spatial layers on the external cases real Caffe wrote, and a --dynamic-batch run against real Caffe."""
import numpy as np
import pytest

import caffe2onnx
from caffe2onnx.converter import build_model, check_model
from caffe2onnx.validators.onnx_runner import run_onnx
from harness import OPSETS, check_dynamic_batch, corpus, input_layer

# case -> whether it ships a caffemodel (Pooling and LRN have no weights)
CASES = {"layer_convolution": True, "layer_pooling_max": False, "layer_lrn_channels": False}


def _load_case(case: str):
    prototxt = corpus(f"caffe_layer_cases/{case}.prototxt")
    model = corpus(f"caffe_layer_cases/{case}.caffemodel") if CASES[case] else None
    # The prototxts declare their input the legacy way (input: + input_dim), so no shapes are needed.
    net = caffe2onnx.load(prototxt, model)
    blob = np.load(corpus("caffe_layer_cases/blob.npy"))
    want = np.load(corpus(f"caffe_layer_cases/{case}.npy"))
    assert net.inputs == ("input",) and net.shape("input") == blob.shape
    return net, blob, want


def _diff(got: np.ndarray, want: np.ndarray) -> None:
    assert got.shape == want.shape
    d = np.abs(got.astype(np.float64) - want)
    assert np.isfinite(got).all() and d.mean() <= 1e-5 and d.max() <= 1e-4, (d.mean(), d.max())


@pytest.mark.parametrize("opset", OPSETS)
@pytest.mark.parametrize("case", sorted(CASES))
def test_corpus_case(case, opset):
    net, blob, want = _load_case(case)
    model = build_model(net, opset=opset)
    check_model(model)
    out, _ = run_onnx(model, {"input": blob})
    _diff(out[net.outputs[0]], want)


@pytest.mark.parametrize("case", sorted(CASES))
def test_corpus_case_dynamic_batch(case):
    """The corpus blob has batch 2; a dynamic-batch model must give Caffe's numbers for each sample alone."""
    net, blob, want = _load_case(case)
    model = build_model(net, opset=17, dynamic_batch=True)
    check_model(model)
    for rows in (slice(0, 1), slice(1, 2), slice(0, 2)):
        out, _ = run_onnx(model, {"input": blob[rows]})
        _diff(out[net.outputs[0]], want[rows])


DYNAMIC_NET = input_layer((1, 3, 13, 12)) + """
layer { name: "conv" type: "Convolution" bottom: "data" top: "conv"
        convolution_param { num_output: 6 kernel_size: 3 stride: 2 pad: 1 group: 3 } }
layer { name: "ave" type: "Pooling" bottom: "conv" top: "ave" pooling_param { pool: AVE kernel_size: 3 stride: 2 } }
layer { name: "max" type: "Pooling" bottom: "ave" top: "max" pooling_param { pool: MAX kernel_size: 1 stride: 3 } }
layer { name: "lrn" type: "LRN" bottom: "ave" top: "lrn" lrn_param { local_size: 3 norm_region: WITHIN_CHANNEL } }
layer { name: "up" type: "Deconvolution" bottom: "lrn" top: "up"
        convolution_param { num_output: 2 kernel_size: 4 stride: 2 pad: 1 } }
"""


@pytest.mark.parametrize("opset", OPSETS)
def test_dynamic_batch_against_caffe(tmp_path, opset):
    """A --dynamic-batch model run on batch 1 and 3 gives real Caffe's numbers at each batch size."""
    check_dynamic_batch(tmp_path, DYNAMIC_NET, opset, seed=3)