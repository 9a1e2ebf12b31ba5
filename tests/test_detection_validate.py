"""validate's comparison of DetectionOutput blobs as sets of detections."""
import numpy as np

from caffe2onnx.validators.compare import compare_detections, match_detections

REF = np.array([[0, 1, 0.9, 0.1, 0.1, 0.5, 0.5],
                [0, 1, 0.7, 0.2, 0.2, 0.6, 0.6],
                [0, 1, 0.7, 0.3, 0.3, 0.7, 0.7],
                [1, 2, 0.8, 0.0, 0.0, 0.4, 0.4]], np.float32).reshape(1, 1, -1, 7)


def _rows(*order):
    return REF[:, :, list(order)]


def test_equal_scores_in_another_order_match():
    m = match_detections(_rows(0, 2, 1, 3), REF, 1e-5)
    assert m.passed and m.matched == 4 and m.note() == "4/4 detections matched"
    s = compare_detections("det", _rows(0, 2, 1, 3), REF, 1e-5, layer="det", layer_type="DetectionOutput")
    assert s.passed and s.max_abs == 0 and "4/4" in s.note


def test_a_moved_box_is_unmatched_and_shown():
    got = REF.copy()
    got[0, 0, 3, 5] += 1e-3
    m = match_detections(got, REF, 1e-4)
    assert not m.passed and m.matched == 3 and not match_detections(got, REF, 1e-4, keep_top_k=1).passed
    assert "3/4 detections matched; first unmatched reference row [1, 2, 0.8, 0, 0, 0.4, 0.4]" in m.note()
    assert match_detections(got, REF, 1e-2).passed


def test_image_and_label_must_agree_exactly():
    for col in (0, 1):
        got = REF.copy()
        got[0, 0, 0, col] += 1
        assert not match_detections(got, REF, 10.0).passed


def test_a_missing_row_fails_with_both_counts():
    s = compare_detections("det", _rows(0, 1, 2), REF, 1e-5)
    assert not s.passed and s.shape == (1, 1, 4, 7)
    assert "3/4 detections matched (ONNX has 3 rows, the reference 4)" in s.note


def test_rows_swapped_at_the_keep_top_k_cut_count_as_matched_there():
    """keep_top_k cut among scores equal within atol: either may be kept; nothing else may differ."""
    got = REF.copy()
    got[0, 0, 2, 3:] = [0.5, 0.5, 0.9, 0.9]  # another box, at the lowest kept score (0.7) of image 0
    m = match_detections(got, REF, 1e-5, keep_top_k=3)
    assert m.passed and m.matched == 3 and m.tied_at_cut == 1 and "keep_top_k cut" in m.note()
    assert not match_detections(got, REF, 1e-5, keep_top_k=4).passed  # image 0 was not cut
    assert not match_detections(got, REF, 1e-5).passed
    got[0, 0, 0, 3:] = [0.5, 0.5, 0.9, 0.9]  # a changed top-scoring box is a real difference
    assert not match_detections(got, REF, 1e-5, keep_top_k=3).passed


def test_no_detection_rows_match():
    empty = np.array([[0, -1, -1, -1, -1, -1, -1], [1, -1, -1, -1, -1, -1, -1]], np.float32).reshape(1, 1, 2, 7)
    assert match_detections(empty, empty, 1e-5).passed
    assert not match_detections(empty[:, :, :1], empty, 1e-5).passed
