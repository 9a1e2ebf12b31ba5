"""Every fork mapping also runs in OpenVINO (CPU, f32 inference precision) at opset 11 and the newest."""
from __future__ import annotations

import numpy as np
import pytest

from caffe2onnx.converter import build_model, max_opset
from test_fork_layers import F, ROIS, SEEDED, check_fork, inputs_text, layer

ov = pytest.importorskip("openvino", reason="openvino is not installed")

ROI_CASES = {
    "roi_pooling": (4, layer("ROIPooling", "roi_pooling_param { pooled_h: 3 pooled_w: 2 spatial_scale: 0.5 }",
                             ("feat", "rois"))),
    "psroi_pooling": (12, layer("PSROIPooling", "psroi_pooling_param { spatial_scale: 0.5 output_dim: 3 "
                                "group_size: 2 }", ("feat", "rois"))),
}


def run_openvino(model, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    core = ov.Core()
    compiled = core.compile_model(core.read_model(model.SerializeToString(), b""), "CPU",
                                  {"INFERENCE_PRECISION_HINT": "f32"})
    result = compiled(inputs)
    # by position: OpenVINO may name an output after its producing node
    return {o.name: np.asarray(result[out]) for o, out in zip(model.graph.output, compiled.outputs)}


def _check(tmp_path, text: str, inputs=None, weights=None):
    _, _, net, inputs, ref = check_fork(tmp_path, text, inputs, weights, opsets=())
    for opset in sorted({11, max_opset()}):
        got = run_openvino(build_model(net, opset=opset), inputs)
        for name in net.outputs:
            np.testing.assert_allclose(got[name], ref[name], rtol=0, atol=2e-5, err_msg=f"opset {opset} {name}")


@pytest.mark.parametrize("case", sorted(SEEDED))
def test_openvino_seeded(tmp_path, case):
    shapes, text = SEEDED[case]
    weights = None
    if case.startswith("bn_pspnet"):
        c = shapes["data"][1]
        weights = {"l": [np.ones((1, c, 1, 1)), np.zeros((1, c, 1, 1)), np.zeros((1, c, 1, 1)),
                         np.full((1, c, 1, 1), 2.0)]}
    _check(tmp_path, inputs_text(**shapes) + text, weights=weights)


@pytest.mark.parametrize("case", sorted(ROI_CASES))
@pytest.mark.parametrize("batch", [1, 2])
def test_openvino_roi(tmp_path, case, batch):
    c, text = ROI_CASES[case]
    rois = ROIS if batch == 2 else np.concatenate([np.zeros((6, 1), F), ROIS[:, 1:]], 1)
    feat = np.random.default_rng(3).standard_normal((batch, c, 6, 9)).astype(F)
    _check(tmp_path, inputs_text(feat=feat.shape, rois=rois.shape) + text, {"feat": feat, "rois": rois})
