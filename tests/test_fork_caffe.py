"""Fork layers that BVLC layers express exactly, judged by real Caffe running the BVLC form.

ConvolutionDepthwise / DepthwiseConvolution are group convolutions, ShuffleChannel is
Reshape-Permute-Reshape, Axpy is Scale (second bottom) + Eltwise SUM, PSPNet's BN is
BatchNorm + Scale and SegNet's is Scale (INFERENCE) or batch-statistics BatchNorm + Scale
(LEARN). Real Caffe (or the golden file it wrote) runs the BVLC net; the fork net gets
the same weights, rearranged as the fork stores them, and its ONNX model and NumPy
reference must give real Caffe's top.
"""
from __future__ import annotations

import numpy as np
import pytest

from harness import OPSETS, assert_close, onnx_blobs, reference
from test_fork_layers import fork_net, inputs_text, layer

F = np.float32


def _c4(v) -> np.ndarray:
    return np.asarray(v, F).reshape(1, -1, 1, 1)


def _same(w):
    return {"l": list(w["l"])}


def _bn_psp(w):  # BatchNorm (mean, var, factor 1) + Scale (s, b) -> slope, bias, mean, var
    mean, var, _ = w["bn"]
    s, b = w["sc"]
    return {"l": [_c4(s), _c4(b), _c4(mean), _c4(var)]}


def _bn_segnet(w):
    s, b = w["sc"]
    return {"l": [_c4(s), _c4(b)]}


SHUFFLE_BVLC = (
    'layer { name: "r1" type: "Reshape" bottom: "data" top: "r1" reshape_param { shape { dim: 0 dim: 3 dim: 2 dim: -1 } } }\n'
    'layer { name: "p" type: "Permute" bottom: "r1" top: "p" permute_param { order: 0 order: 2 order: 1 order: 3 } }\n'
    'layer { name: "r2" type: "Reshape" bottom: "p" top: "out" reshape_param { shape { dim: 0 dim: 6 dim: 5 dim: 4 } } }\n')
BN_PSP_BVLC = ('layer { name: "bn" type: "BatchNorm" bottom: "data" top: "bn" batch_norm_param { eps: 0.001 } }\n'
               'layer { name: "sc" type: "Scale" bottom: "bn" top: "out" scale_param { bias_term: true } }\n')
BN_LEARN_BVLC = ('layer { name: "bn" type: "BatchNorm" bottom: "data" top: "bn" '
                 'batch_norm_param { use_global_stats: false eps: 1e-9 } }\n'
                 'layer { name: "sc" type: "Scale" bottom: "bn" top: "out" scale_param { bias_term: true } }\n')
CONV = "convolution_param { num_output: 6 kernel_size: 3 pad: 1 stride: 2 bias_term: true"

# case -> (input shapes, BVLC text for real Caffe, fork text, weights for the fork from Caffe's)
CASES = {
    "convdw": (dict(data=(2, 6, 7, 6)), layer("Convolution", CONV + " group: 6 }"),
               layer("ConvolutionDepthwise", CONV + " }"), _same),
    "dwconv": (dict(data=(2, 6, 7, 6)), layer("Convolution", CONV + " group: 3 dilation: 2 }"),
               layer("DepthwiseConvolution", CONV + " group: 3 dilation: 2 }"), _same),
    "shuffle": (dict(data=(2, 6, 5, 4)), SHUFFLE_BVLC, layer("ShuffleChannel", "shuffle_channel_param { group: 3 }"),
                lambda w: {}),
    "axpy": (dict(a=(2, 3), x=(2, 3, 4, 5), y=(2, 3, 4, 5)),
             'layer { name: "s" type: "Scale" bottom: "x" bottom: "a" top: "ax" scale_param { axis: 0 } }\n'
             'layer { name: "e" type: "Eltwise" bottom: "ax" bottom: "y" top: "out" }\n',
             layer("Axpy", bottoms=("a", "x", "y")), lambda w: {}),
    "bn_pspnet": (dict(data=(2, 4, 3, 5)), BN_PSP_BVLC, layer("BN", "bn_param { eps: 0.001 frozen: true }"), _bn_psp),
    "bn_segnet_inference": (dict(data=(2, 4, 3, 5)), layer("Scale", "scale_param { bias_term: true }", name="sc"),
                            layer("BN", "bn_param { bn_mode: INFERENCE }"), _bn_segnet),
    "bn_segnet_learn": (dict(data=(3, 4, 3, 5)), BN_LEARN_BVLC, layer("BN", "bn_param { bn_mode: LEARN }"),
                        _bn_segnet),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_fork_layer_matches_real_caffe_bvlc_form(tmp_path, case):
    shapes, bvlc, fork, to_fork = CASES[case]
    bvlc_dir, fork_dir = tmp_path / "bvlc", tmp_path / "fork"
    bvlc_dir.mkdir()
    fork_dir.mkdir()
    _, _, ref = reference(bvlc_dir, f"fork_{case}", inputs_text(**shapes) + bvlc, {})
    _, _, net = fork_net(fork_dir, inputs_text(**shapes) + fork, to_fork(ref.weights))
    want = {k: ref.blobs[k] for k in ("out", *shapes)}
    # BN's (var + eps)^-0.5 and E(x^2) - E(x)^2 round differently from BatchNorm's sqrt and E((x-m)^2).
    tol = 2e-5 if case.startswith("bn") else 1e-5
    for opset in OPSETS:
        assert_close(onnx_blobs(net, opset, ref.inputs), want, want, max_abs=tol, mean_abs=tol)
    from caffe2onnx.validators.numpy_ref import run_numpy
    assert_close(run_numpy(net, ref.inputs), want, want, max_abs=tol, mean_abs=tol, what="NumPy reference")
