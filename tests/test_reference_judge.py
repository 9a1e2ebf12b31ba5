"""Real Caffe judges only what it computes as caffe2onnx means it: the reference prototxt spells
out the fork defaults we follow, and nets with layers it lacks or computes otherwise go to numpy."""
import numpy as np
import pytest

import caffe2onnx
from caffe2onnx.validators import caffe_reference
from caffe2onnx.validators.check import validate
from caffe2onnx.validators.references import ReferenceUnavailable, get_reference
from harness import input_layer, live_caffe

SSD_HEAD = (input_layer((1, 2, 3, 3), "feat") + input_layer((1, 3, 6, 6), "img").replace('name: "input"', 'name: "in2"')
            + input_layer((1, 36), "loc").replace('name: "input"', 'name: "in3"')
            + input_layer((1, 18), "conf").replace('name: "input"', 'name: "in4"') + """
layer { name: "prior" type: "PriorBox" bottom: "feat" bottom: "img" top: "prior"
  prior_box_param { min_size: 2 variance: 0.1 } }
layer { name: "det" type: "DetectionOutput" bottom: "loc" bottom: "conf" bottom: "prior" top: "det"
  detection_output_param { num_classes: 2 keep_top_k: 5 } }
""")


def test_reference_prototxt_spells_out_the_weiliu89_defaults(tmp_path):
    path = tmp_path / "ssd.prototxt"
    path.write_text(SSD_HEAD)
    text = caffe2onnx.load(path).reference_prototxt()
    assert "clip: false" in text  # weiliu89's default; the installed Caffe's schema says true
    assert "nms_threshold: 0.3" in text  # without nms_param the installed Caffe would skip NMS


BN_NET = input_layer((1, 2, 3, 3)) + """
layer { name: "bn" type: "BN" bottom: "data" top: "bn" bn_param { bn_mode: INFERENCE } }
"""


def test_auto_reference_is_numpy_for_a_layer_caffe_lacks(tmp_path, monkeypatch):
    monkeypatch.setattr(caffe_reference, "caffe_layer_types", lambda python=None: frozenset({"Input", "ReLU"}))
    path = tmp_path / "bn.prototxt"
    path.write_text(BN_NET)
    net = caffe2onnx.load(path, random_weights=0)
    assert "no BN layer" in caffe_reference.caffe_cannot_judge(net)
    assert get_reference("auto", net).name == "numpy"
    with pytest.raises(ReferenceUnavailable, match="cannot judge this net.*'bn' \\(type BN\\)"):
        get_reference("caffe", net).run(net, path, None, {"data": np.zeros((1, 2, 3, 3), np.float32)})


def test_mask_upsample_is_not_judged_by_caffe(tmp_path, monkeypatch):
    monkeypatch.setattr(caffe_reference, "caffe_layer_types",
                        lambda python=None: frozenset({"Input", "Pooling", "Upsample"}))
    path = tmp_path / "up.prototxt"
    path.write_text(input_layer((1, 2, 4, 4)) + """
layer { name: "pool" type: "Pooling" bottom: "data" top: "pool" top: "mask" pooling_param { pool: MAX kernel_size: 2 stride: 2 } }
layer { name: "up" type: "Upsample" bottom: "pool" bottom: "mask" top: "up" upsample_param { scale: 2 } }
""")
    assert "pooling mask" in caffe_reference.caffe_cannot_judge(caffe2onnx.load(path))


@pytest.mark.skipif(not live_caffe(), reason="needs real Caffe (pycaffe) to list its layer types")
def test_real_caffe_lists_its_layer_types():
    have = caffe_reference.caffe_layer_types()
    assert {"Convolution", "PriorBox", "DetectionOutput"} <= have and "BN" not in have


@pytest.mark.skipif(not live_caffe(), reason="needs real Caffe (pycaffe)")
def test_validate_auto_on_a_fork_layer_runs_numpy(tmp_path):
    from caffe2onnx.converter import convert_file
    path = tmp_path / "bn.prototxt"
    path.write_text(BN_NET)
    convert_file(tmp_path / "bn.onnx", path, random_weights=0)
    net = caffe2onnx.load(path, random_weights=0)
    result = validate(path, None, tmp_path / "bn.onnx", net=net)
    assert result.reference == "numpy" and result.passed
