"""PriorBox against real Caffe, every field: the initializer must equal Caffe's top bit for bit."""
import numpy as np
import pytest

import caffe2onnx
from caffe2onnx.errors import UnsupportedLayerError
from detection_cases import EDGE_OPSETS, inputs_layer, reference
from harness import assert_close, numpy_blobs, onnx_blobs


def _net(body: str, fm=(1, 1, 4, 4), img=(1, 1, 32, 32), clip: bool = True) -> str:
    body += "" if "clip" in body or not clip else " clip: true"
    return (inputs_layer("data", img) + inputs_layer("fm", fm)
            + f'layer {{ name: "pb" type: "PriorBox" bottom: "fm" bottom: "data" top: "pb" '
              f'prior_box_param {{ {body} }} }}\n')


# case -> (prior_box_param body, feature-map shape, image shape)
CASES = {
    "min_size": ("min_size: 8", (1, 1, 4, 4), (1, 1, 32, 32)),
    "min_max": ("min_size: 8 max_size: 20", (1, 1, 4, 4), (1, 1, 32, 32)),
    "several_sizes": ("min_size: 6 min_size: 11 max_size: 13 max_size: 29", (1, 1, 3, 5), (1, 1, 30, 50)),
    "aspect_flip": ("min_size: 9 aspect_ratio: 2 aspect_ratio: 3", (1, 1, 5, 5), (1, 1, 40, 40)),
    "aspect_no_flip": ("min_size: 9 aspect_ratio: 2 aspect_ratio: 0.7 flip: false", (1, 1, 5, 5), (1, 1, 40, 40)),
    "aspect_duplicates": ("min_size: 9 aspect_ratio: 1 aspect_ratio: 2 aspect_ratio: 2 aspect_ratio: 0.5",
                          (1, 1, 3, 3), (1, 1, 30, 30)),
    "no_clip": ("min_size: 30 max_size: 60 aspect_ratio: 2 clip: false", (1, 1, 3, 3), (1, 1, 32, 32)),
    "one_variance": ("min_size: 8 variance: 0.25", (1, 1, 4, 4), (1, 1, 32, 32)),
    "four_variances": ("min_size: 8 variance: 0.1 variance: 0.1 variance: 0.2 variance: 0.2", (1, 1, 4, 4),
                       (1, 1, 32, 32)),
    "img_size": ("min_size: 60 max_size: 110 aspect_ratio: 2 img_size: 300 clip: false", (1, 1, 5, 5),
                 (1, 1, 16, 16)),
    "img_h_w": ("min_size: 20 img_h: 120 img_w: 200", (1, 1, 3, 4), (1, 1, 8, 8)),
    "step": ("min_size: 10 step: 8 clip: false", (1, 1, 4, 4), (1, 1, 30, 30)),
    "step_h_w": ("min_size: 10 step_h: 7.5 step_w: 9.25", (1, 1, 4, 3), (1, 1, 30, 30)),
    "offset": ("min_size: 10 offset: 0 clip: false", (1, 1, 4, 4), (1, 1, 32, 32)),
    "non_square": ("min_size: 7 max_size: 15 aspect_ratio: 3", (1, 1, 3, 7), (1, 1, 27, 61)),
    "fractional_sizes": ("min_size: 60.7 max_size: 111.3 aspect_ratio: 2 aspect_ratio: 0.7", (1, 1, 19, 19),
                         (1, 1, 300, 300)),  # Caffe truncates min/max to int
    "batch_two": ("min_size: 8 max_size: 16", (2, 3, 4, 4), (2, 1, 32, 32)),
    "mobilenet_ssd_head": ("min_size: 60.0 aspect_ratio: 2.0 flip: true clip: false variance: 0.1 "
                           "variance: 0.1 variance: 0.2 variance: 0.2 offset: 0.5", (1, 1, 19, 19), (1, 1, 300, 300)),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_prior_box_bit_exact(tmp_path, case):
    body, fm, img = CASES[case]
    net, inputs, want = reference(tmp_path, f"priorbox_{case}", _net(body, fm, img),
                                  lambda n, rng: {k: np.zeros(n.shape(k), np.float32) for k in n.inputs})
    for opset in EDGE_OPSETS:
        got = onnx_blobs(net, opset, inputs)
        assert got["pb"].dtype == np.float32 and np.array_equal(got["pb"], want["pb"]), f"opset {opset}"
    assert np.array_equal(numpy_blobs(net, inputs)["pb"], want["pb"])


def test_unset_clip_follows_weiliu89(tmp_path):
    """weiliu89 defaults clip to false; real Caffe here defaults it to true, so it runs clip: false."""
    body, fm, img = "min_size: 30 max_size: 60 aspect_ratio: 2", (1, 1, 3, 3), (1, 1, 32, 32)
    net, inputs, want = reference(tmp_path, "priorbox_unset_clip", _net(body + " clip: false", fm, img),
                                  lambda n, rng: {k: np.zeros(n.shape(k), np.float32) for k in n.inputs})
    (tmp_path / "unset.prototxt").write_text(_net(body, fm, img, clip=False))
    unset = caffe2onnx.load(tmp_path / "unset.prototxt")
    assert not unset.layer("pb").params.clip and (want["pb"] < 0).any()
    assert_close(onnx_blobs(unset, EDGE_OPSETS[-1], inputs), want, ["pb"], max_abs=0, mean_abs=0)


@pytest.mark.parametrize("body, field", [
    ("max_size: 8", "min_size"),
    ("min_size: 8 max_size: 6", "max_size"),
    ("min_size: 8 min_size: 9 max_size: 16", "max_size"),
    ("min_size: 8 variance: 0.1 variance: 0.2", "variance"),
    ("min_size: 8 variance: 0", "variance"),
    ("min_size: 8 img_size: 30 img_h: 30 img_w: 30", "img_size"),
    ("min_size: 8 img_h: 30", "img_h/img_w"),
    ("min_size: 8 step: 4 step_h: 4 step_w: 4", "step"),
    ("min_size: 8 aspect_ratio: -2", "aspect_ratio"),
])
def test_invalid_fields_refused(tmp_path, body, field):
    path = tmp_path / "net.prototxt"
    path.write_text(_net(body))
    with pytest.raises(UnsupportedLayerError, match=f"prior_box_param.{field}"):
        caffe2onnx.load(path)


def test_huge_priors_refused_before_allocating(tmp_path):
    from caffe2onnx.converter import build_model
    path = tmp_path / "net.prototxt"
    path.write_text(_net("min_size: 8 aspect_ratio: 2 aspect_ratio: 3", fm=(1, 1, 1200, 1200), img=(1, 1, 32, 32)))
    with pytest.raises(UnsupportedLayerError, match="layer 'pb' .*more than the 16777216"):
        build_model(caffe2onnx.load(path), opset=17)
