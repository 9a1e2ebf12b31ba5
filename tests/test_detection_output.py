"""DetectionOutput against real Caffe: every field and the corners where ONNX's NMS differs from
Caffe's ApplyNMSFast, at opset 11 and the newest; refused corners name their field."""
import numpy as np
import pytest

import caffe2onnx
from caffe2onnx.converter import build_model
from caffe2onnx.errors import UnsupportedLayerError
from detection_cases import EDGE_OPSETS, check_detection_case, detection_net, uniform_conf
from caffe2onnx.converter import check_model
from caffe2onnx.validators.caffe_reference import blobs_for_net, run_caffe
from caffe2onnx.validators.onnx_runner import run_onnx
from detection_cases import assert_detections
from harness import live_caffe, reshaped_prototxt


def _zero_loc(levels=None):
    base = uniform_conf(levels=levels)

    def make(net, rng):
        out = base(net, rng)
        out["loc"] = np.zeros_like(out["loc"])  # decoded boxes are the priors themselves
        return out
    return make


NMS = "nms_param { nms_threshold: 0.45 top_k: 20 }"
# case -> (detection_output_param body, detection_net options, inputs)
CASES = {
    "center_size_over_keep_top_k": (f"{NMS} code_type: CENTER_SIZE keep_top_k: 10 confidence_threshold: 0.6", {}, None),
    "center_size_under_keep_top_k": (f"{NMS} code_type: CENTER_SIZE keep_top_k: 60 confidence_threshold: 0.9",
                                     {}, None),
    "no_detection": (f"{NMS} code_type: CENTER_SIZE keep_top_k: 10 confidence_threshold: 1.5", {}, None),
    "no_detection_one_image": (f"{NMS} code_type: CENTER_SIZE confidence_threshold: 1.5", {"batch": 1}, None),
    "defaults_all_kept": ("nms_param { nms_threshold: 0.3 }", {}, None),  # no threshold, top_k, keep_top_k
    "corner": (f"{NMS} code_type: CORNER keep_top_k: 30 confidence_threshold: 0.5", {}, None),
    "corner_encoded": (f"{NMS} code_type: CORNER variance_encoded_in_target: true confidence_threshold: 0.5",
                       {}, uniform_conf(0.05)),
    "corner_size": (f"{NMS} code_type: CORNER_SIZE keep_top_k: 30 confidence_threshold: 0.5", {}, None),
    "corner_size_encoded": (f"{NMS} code_type: CORNER_SIZE variance_encoded_in_target: true "
                            "confidence_threshold: 0.5", {}, uniform_conf(0.1)),
    "center_size_encoded": (f"{NMS} code_type: CENTER_SIZE variance_encoded_in_target: true "
                            "confidence_threshold: 0.5", {}, uniform_conf(0.2)),
    # CORNER with unit variances and large offsets: many boxes have xmin > xmax (Caffe's IoU 0)
    "inverted_boxes": ("nms_param { nms_threshold: 0.2 } code_type: CORNER confidence_threshold: 0.3",
                       {"pb": "min_size: 8 aspect_ratio: 2 variance: 1"}, uniform_conf(0.3)),
    "no_share_location": (f"{NMS} code_type: CENTER_SIZE keep_top_k: 25 confidence_threshold: 0.5",
                          {"share_location": False}, None),
    "no_share_location_bg2": (f"{NMS} background_label_id: 2 code_type: CORNER_SIZE confidence_threshold: 0.6",
                              {"share_location": False}, None),
    "no_background": (f"{NMS} background_label_id: -1 code_type: CENTER_SIZE confidence_threshold: 0.7",
                      {"share_location": False}, None),
    "background_last": (f"{NMS} background_label_id: 3 code_type: CENTER_SIZE keep_top_k: 12 "
                        "confidence_threshold: 0.7", {}, None),
    # overlapping boxes of one class: zero offsets, so boxes are the (overlapping) priors
    "overlap_suppressed": ("nms_param { nms_threshold: 0.2 top_k: 50 } code_type: CENTER_SIZE "
                           "confidence_threshold: 0.3", {"pb": "min_size: 12 max_size: 20 aspect_ratio: 2"},
                           _zero_loc()),
    # two identical priors per location: IoU exactly 1; Caffe keeps a box when IoU <= threshold
    "iou_equal_threshold_kept": ("nms_param { nms_threshold: 1.0 } code_type: CENTER_SIZE confidence_threshold: 0.5",
                                 {"pb": "min_size: 8 min_size: 8"}, _zero_loc()),
    "iou_above_threshold": ("nms_param { nms_threshold: 0.99 } code_type: CENTER_SIZE confidence_threshold: 0.5",
                            {"pb": "min_size: 8 min_size: 8"}, _zero_loc()),
    # equal scores (multiples of 1/8): stable order by prior, and scores equal to the threshold drop
    "ties_nms_order": ("nms_param { nms_threshold: 0.3 top_k: 12 } code_type: CENTER_SIZE confidence_threshold: 0.5",
                       {}, uniform_conf(levels=8)),
    # ties across the keep_top_k cut with at most 16 candidates: std::sort is an insertion sort there
    "ties_keep_top_k": ("nms_param { nms_threshold: 0.9 } code_type: CENTER_SIZE keep_top_k: 5 "
                        "confidence_threshold: 0.5",
                        {"fm": (2, 2), "pb": "min_size: 8 aspect_ratio: 2", "batch": 3, "classes": 3},
                        uniform_conf(levels=4)),
    "top_k_beyond_priors": ("nms_param { nms_threshold: 0.5 top_k: 1000 } code_type: CENTER_SIZE "
                            "keep_top_k: 1000 confidence_threshold: 0.8", {}, None),
    "eta_without_effect": ("nms_param { nms_threshold: 0.45 eta: 0.9 } code_type: CENTER_SIZE "
                           "confidence_threshold: 0.6", {}, None),
    "nms_threshold_zero": ("nms_param { nms_threshold: 0 } code_type: CENTER_SIZE confidence_threshold: 0.6", {}, None),
    "three_images": (f"{NMS} code_type: CENTER_SIZE keep_top_k: 8 confidence_threshold: 0.7", {"batch": 3}, None),
    "save_output_ignored": (f"{NMS} code_type: CENTER_SIZE confidence_threshold: 0.8 "
                            'save_output_param { output_name_prefix: "x" }', {}, None),
}


def _per_image(keep):
    return lambda rows: all((rows[:, 0] == i).sum() == keep for i in np.unique(rows[:, 0]))


def _duplicates(rows):
    return len({tuple(r[[0, 1, 3, 4, 5, 6]]) for r in rows}) < len(rows)


# What each corner case exists for, checked on real Caffe's own output.
CLAIMS = {
    "center_size_over_keep_top_k": _per_image(10),
    "three_images": lambda rows: _per_image(8)(rows) and set(rows[:, 0]) == {0, 1, 2},
    "center_size_under_keep_top_k": lambda rows: all((rows[:, 0] == i).sum() < 60 for i in (0, 1)),
    "inverted_boxes": lambda rows: ((rows[:, 5] < rows[:, 3]) | (rows[:, 6] < rows[:, 4])).any(),
    "iou_equal_threshold_kept": _duplicates,
    "iou_above_threshold": lambda rows: not _duplicates(rows),
    "ties_nms_order": lambda rows: len(np.unique(rows[:, 2])) < len(rows) and (rows[:, 2] > 0.5).all(),
    "ties_keep_top_k": lambda rows: _per_image(5)(rows) and len(np.unique(rows[:, 2])) < 5,
    "overlap_suppressed": lambda rows: len(rows) < 2 * 4 * 4 * 3,
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_detection_output(tmp_path, case):
    body, options, inputs = CASES[case]
    want = check_detection_case(tmp_path, f"detection_{case}", detection_net(tmp_path, body, **options),
                                inputs or uniform_conf())
    rows = want.reshape(-1, 7)
    if case.startswith("no_detection"):
        assert (rows[:, 1:] == -1).all() and list(rows[:, 0]) == list(range(len(rows)))
    else:
        assert (rows[:, 1] >= 0).all(), "the case should detect something"
    assert CLAIMS.get(case, lambda r: True)(rows), f"{case}: Caffe's output does not show the corner the case is for"


def test_no_nms_param_follows_weiliu89(tmp_path):
    """Without nms_param weiliu89 still runs NMS with the message's defaults (nms_threshold 0.3, all
    candidates) and the threshold; real Caffe here skips both, so it runs the defaults spelled out."""
    body = "code_type: CENTER_SIZE confidence_threshold: 0.6"
    check_detection_case(tmp_path, "detection_no_nms_param",
                         detection_net(tmp_path, f"nms_param {{ nms_threshold: 0.3 }} {body}"), uniform_conf(),
                         convert=detection_net(tmp_path, body))


def _net(tmp_path, body, **options):
    path = tmp_path / "refused.prototxt"
    path.write_text(detection_net(tmp_path, body, **options))
    return path


@pytest.mark.parametrize("body, field", [
    ("nms_param { nms_threshold: 0.6 eta: 0.9 }", "nms_param.eta"),
    ("nms_param { nms_threshold: 0.45 top_k: 0 }", "nms_param.top_k"),
    ("nms_param { nms_threshold: 0.45 } keep_top_k: 0", "keep_top_k"),
    ("nms_param { nms_threshold: 0.45 } visualize: true", "visualize"),
    ("nms_param { nms_threshold: 0.45 } thresholds: 0.5", "thresholds"),
    ("nms_param { nms_threshold: 0.45 } background_label_id: -1", "background_label_id"),
])
def test_refused_corners_name_the_field(tmp_path, body, field):
    with pytest.raises(UnsupportedLayerError, match=f"detection_output_param.{field}"):
        caffe2onnx.load(_net(tmp_path, body))


def test_detection_rows_are_dynamic_in_the_model(tmp_path):
    net = caffe2onnx.load(_net(tmp_path, "nms_param { nms_threshold: 0.45 } confidence_threshold: 0.5"))
    model = build_model(net, opset=17)
    dims = model.graph.output[0].type.tensor_type.shape.dim
    assert [d.dim_value or d.dim_param for d in dims] == [1, 1, "num_detections", 7]
    assert not any(n.domain for n in model.graph.node)  # standard ONNX ops only


@pytest.mark.parametrize("opset", EDGE_OPSETS)
def test_dynamic_batch(tmp_path, opset):
    """--dynamic-batch: one graph gives real Caffe's detections at batch 1 and 3 (priors stay [1, 2, ...])."""
    text = detection_net(tmp_path, f"{NMS} code_type: CENTER_SIZE keep_top_k: 6 confidence_threshold: 0.6",
                         batch=1)
    net_path = tmp_path / "dyn.prototxt"
    net_path.write_text(text)
    net = caffe2onnx.load(net_path)
    model = build_model(net, opset=opset, dynamic_batch=True)
    check_model(model)
    dims = {o.name: [d.dim_value or d.dim_param for d in o.type.tensor_type.shape.dim] for o in model.graph.output}
    assert dims == {"det": [1, 1, "num_detections", 7]}
    if not live_caffe():
        pytest.skip("real Caffe (pycaffe) is not installed; this check runs it at several batch sizes")
    for batch in (1, 3):
        at_batch = reshaped_prototxt(net_path, tmp_path / f"b{batch}.prototxt",
                                     {n: (batch, *net.shape(n)[1:]) for n in net.inputs})
        inputs = uniform_conf()(caffe2onnx.load(at_batch), np.random.default_rng(batch))
        want = blobs_for_net(net, run_caffe(at_batch, None, inputs))
        got, _ = run_onnx(model, inputs)
        assert_detections(got["det"], want["det"])
        assert len(set(want["det"][0, 0, :, 0])) == batch
