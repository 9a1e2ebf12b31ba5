"""NetStateRule semantics (phase, stage, not_stage, min/max level, include vs exclude),
checked against the layer list real Caffe builds for the same state."""
import json
import subprocess
import sys

import pytest

import caffe2onnx
from caffe2onnx.errors import NetStructureError
from caffe2onnx.validators.caffe_reference import caffe_available
from loader_util import load_text, write

HEAD = 'layer { name: "in" type: "Input" top: "data" input_param { shape { dim: 1 dim: 2 } } }\n'
RULED = {
    "train_only": "include { phase: TRAIN }",
    "test_only": "include { phase: TEST }",
    "not_train": "exclude { phase: TRAIN }",
    "not_test": "exclude { phase: TEST }",
    "stage_s1": 'include { stage: "s1" }',
    "stages_s1_s2": 'include { stage: "s1" stage: "s2" }',
    "s1_or_s2": 'include { stage: "s1" } include { stage: "s2" }',
    "not_stage_s1": 'include { not_stage: "s1" }',
    "exclude_s2": 'exclude { stage: "s2" }',
    "min_level_2": "include { min_level: 2 }",
    "max_level_1": "include { max_level: 1 }",
    "exclude_min_level_3": "exclude { min_level: 3 }",
    "test_and_s1": 'include { phase: TEST stage: "s1" }',
    "train_level_range": "include { phase: TRAIN min_level: 1 max_level: 2 }",
}
NET = HEAD + "".join(f'layer {{ name: "{n}" type: "ReLU" bottom: "data" top: "{n}" {r} }}\n'
                     for n, r in RULED.items())
STATES = [("TEST", 0, []), ("TRAIN", 0, []), ("TEST", 0, ["s1"]), ("TEST", 0, ["s2"]),
          ("TEST", 2, ["s1", "s2"]), ("TRAIN", 1, ["s2"]), ("TEST", 3, []), ("TRAIN", 2, ["s1"])]

EXPECTED = {  # what Caffe's StateMeetsRule gives, written out by hand
    ("TEST", 0, ()): {"test_only", "not_train", "not_stage_s1", "exclude_s2", "max_level_1", "exclude_min_level_3"},
    ("TRAIN", 1, ("s2",)): {"train_only", "not_test", "s1_or_s2", "not_stage_s1", "max_level_1",
                            "exclude_min_level_3", "train_level_range"},
}


def _ours(tmp_path, phase, level, stages):
    net = load_text(tmp_path, NET, phase=phase, level=level, stages=stages)
    return {l.name for l in net.layers}


@pytest.mark.parametrize("phase,level,stages", [(p, l, tuple(s)) for p, l, s in STATES])
def test_rules_match_hand_expectation_or_caffe(tmp_path, phase, level, stages):
    ours = _ours(tmp_path, phase, level, list(stages))
    if (phase, level, stages) in EXPECTED:
        assert ours == EXPECTED[(phase, level, stages)]
    if not caffe_available():
        pytest.skip("real Caffe not installed: compared with the hand-written expectations only")
    path = write(tmp_path, NET)
    code = ("import caffe, json, sys; n = caffe.Net(sys.argv[1], getattr(caffe, sys.argv[2]), "
            "level=int(sys.argv[3]), stages=json.loads(sys.argv[4])); print(json.dumps(list(n._layer_names)))")
    r = subprocess.run([sys.executable, "-c", code, str(path), phase, str(level), json.dumps(list(stages))],
                       capture_output=True, text=True, env={"GLOG_minloglevel": "2", "PATH": ""}, check=True)
    theirs = {n for n in json.loads(r.stdout.strip().splitlines()[-1]) if n != "in" and not n.endswith("_split")}
    assert ours == theirs


def test_net_state_in_prototxt_adds_stages(tmp_path):
    net = load_text(tmp_path, 'state { stage: "s1" }\n' + NET)
    assert "stage_s1" in {l.name for l in net.layers}


def test_include_and_exclude_together_is_an_error(tmp_path):
    text = HEAD + 'layer { name: "x" type: "ReLU" bottom: "data" top: "x" include { phase: TEST } exclude { stage: "a" } }'
    with pytest.raises(NetStructureError, match="layer 'x'.*either include or exclude"):
        load_text(tmp_path, text)


def test_training_layers_vanish_from_a_test_net(tmp_path):
    text = ('layer { name: "d" type: "Data" top: "data" top: "label" include { phase: TRAIN } data_param { batch_size: 4 } }\n'
            'layer { name: "dt" type: "Data" top: "data" top: "label" include { phase: TEST } data_param { batch_size: 4 } }\n'
            'layer { name: "ip" type: "InnerProduct" bottom: "data" top: "ip" inner_product_param { num_output: 3 } }\n'
            'layer { name: "acc" type: "Accuracy" bottom: "ip" bottom: "label" top: "acc" include { phase: TEST } }\n'
            'layer { name: "loss" type: "SoftmaxWithLoss" bottom: "ip" bottom: "label" top: "loss" }\n')
    with pytest.raises(caffe2onnx.ShapeError, match="'data' \\(top of Data layer 'dt': batch 4"):
        load_text(tmp_path, text)
    net = load_text(tmp_path, text, input_shapes={"data": (4, 1, 5, 5)})
    assert [l.name for l in net.layers] == ["ip"]
    assert net.inputs == ("data",) and net.outputs == ("ip",)  # label is unused once losses are gone


def test_phase_names_and_values(tmp_path):
    assert _ours(tmp_path, caffe2onnx.TRAIN, 0, []) == _ours(tmp_path, "train", 0, [])
    with pytest.raises(caffe2onnx.CaffeParseError, match="phase must be"):
        _ours(tmp_path, "VAL", 0, [])
