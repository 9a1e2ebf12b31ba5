"""Data layers of every kind become graph inputs with the shapes the layers state.

Expected shapes follow Caffe's set-up code: BVLC src/caffe/layers/{data,image_data,window_data,
hdf5_data,memory_data,dummy_data}_layer.cpp and data_transformer.cpp (InferBlobShape), the SSD
fork's annotated_data_layer.cpp / video_data_layer.cpp (weiliu89/caffe, branch ssd). MemoryData
and DummyData need no data files, so real Caffe builds those nets and reports its top shapes
(golden file tests/golden/data_layer_shapes.json when Caffe is absent).
"""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import caffe2onnx
from caffe2onnx.caffemodel_writer import write_caffemodel
from caffe2onnx.errors import NetStructureError, ShapeError, UnsupportedLayerError
from harness import GOLDEN, REGEN, live_caffe
from loader_util import load_text, write

CONV = ('layer { name: "conv" type: "Convolution" bottom: "data" top: "conv" '
        'convolution_param { num_output: 4 kernel_size: 3 GROUP } }\n')
LOSS = ('layer { name: "loss" type: "SoftmaxWithLoss" bottom: "conv" bottom: "label" top: "loss" }\n'
        'layer { name: "acc" type: "Accuracy" bottom: "conv" bottom: "label" top: "acc" include { phase: TEST } }\n')


def _net(data_layer: str, group: int = 1) -> str:
    return data_layer + CONV.replace("GROUP", f"group: {group}" if group > 1 else "") + LOSS


# Data layer -> the data top's shape, as each layer's set-up code computes it from its parameters.
STATED = {
    "data_crop_mean": ('layer { name: "d" type: "Data" top: "data" top: "label" data_param { batch_size: 5 } '
                       'transform_param { crop_size: 9 mean_value: 1 mean_value: 2 mean_value: 3 } }\n', (5, 3, 9, 9)),
    "image_data_resize": ('layer { name: "d" type: "ImageData" top: "data" top: "label" image_data_param { '
                          'batch_size: 2 new_height: 11 new_width: 7 } }\n', (2, 3, 11, 7)),
    "image_data_grey_crop": ('layer { name: "d" type: "ImageData" top: "data" top: "label" image_data_param { '
                             'new_height: 11 new_width: 9 is_color: false } transform_param { crop_size: 5 } }\n',
                             (1, 1, 5, 5)),  # batch_size defaults to 1; the crop wins over the resize
    "window_data": ('layer { name: "d" type: "WindowData" top: "data" top: "label" window_data_param { '
                    'batch_size: 4 } transform_param { crop_size: 8 mean_value: 1 mean_value: 2 mean_value: 3 } }\n',
                    (4, 3, 8, 8)),
    "annotated_resize": ('layer { name: "d" type: "AnnotatedData" top: "data" top: "label" data_param { batch_size: 3 } '
                         'transform_param { mean_value: 1 mean_value: 2 mean_value: 3 resize_param { '
                         'resize_mode: WARP height: 10 width: 12 } } }\n', (3, 3, 10, 12)),
    "annotated_crop_hw": ('layer { name: "d" type: "AnnotatedData" top: "data" top: "label" data_param { '
                          'batch_size: 1 } transform_param { mean_value: 1 mean_value: 2 crop_h: 6 crop_w: 7 } }\n', (1, 2, 6, 7)),
    "video_data": ('layer { name: "d" type: "VideoData" top: "data" top: "label" data_param { batch_size: 2 } transform_param { '
                   'mean_value: 1 mean_value: 2 mean_value: 3 resize_param { resize_mode: FIT_LARGE_SIZE_AND_PAD '
                   'height: 8 width: 9 } } }\n', (2, 3, 8, 9)),
    "memory_data": ('layer { name: "d" type: "MemoryData" top: "data" top: "label" memory_data_param { '
                    'batch_size: 2 channels: 3 height: 6 width: 5 } }\n', (2, 3, 6, 5)),
    "dummy_shape": ('layer { name: "d" type: "DummyData" top: "data" top: "label" dummy_data_param { '
                    'shape { dim: 2 dim: 3 dim: 5 dim: 5 } shape { dim: 2 } } }\n', (2, 3, 5, 5)),
    "dummy_legacy": ('layer { name: "d" type: "DummyData" top: "data" top: "label" dummy_data_param { '
                     'num: 2 channels: 3 channels: 1 height: 7 width: 6 } }\n', (2, 3, 7, 6)),
}


@pytest.mark.parametrize("case", sorted(STATED))
def test_data_layer_states_its_shape(tmp_path, case):
    text, want = STATED[case]
    net = load_text(tmp_path, _net(text), random_weights=0)
    assert net.inputs == ("data",)  # the label feeds only the dropped loss and accuracy layers
    assert net.shape("data") == want
    assert [l.type for l in net.layers] == ["Convolution"]
    caffe2onnx.converter.build(net).check()


# Shapes real Caffe gives the tops of data layers that need no files (checked live, or golden).
CAFFE_CASES = {
    "memory_data": STATED["memory_data"][0],
    "dummy_shape": STATED["dummy_shape"][0],
    "dummy_legacy": STATED["dummy_legacy"][0],
    "dummy_one_shape_for_all": ('layer { name: "d" type: "DummyData" top: "data" top: "b" dummy_data_param { '
                                'shape { dim: 1 dim: 2 dim: 5 dim: 4 } } }\n'),
}
_SHAPES_GOLDEN = GOLDEN / "data_layer_shapes.json"
# Shapes after a forward pass (MemoryData's Forward reshapes its label from (N,) to (N, 1, 1, 1)).
_PRINT_SHAPES = """
import json, sys, numpy as np, caffe
n = caffe.Net(sys.argv[1], caffe.TEST)
if n.layers[0].type == "MemoryData":
    shape = n.blobs["data"].data.shape
    n.set_input_arrays(np.zeros(shape, np.float32), np.zeros(shape[0], np.float32))
n.forward()
print(json.dumps({k: list(v.data.shape) for k, v in n.blobs.items()}))
"""


def _caffe_shapes(path) -> dict:
    env = dict(os.environ, GLOG_minloglevel="2")
    r = subprocess.run([sys.executable, "-c", _PRINT_SHAPES, str(path)], capture_output=True, text=True,
                       env=env, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    return json.loads(r.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("case", sorted(CAFFE_CASES))
def test_data_layer_shapes_match_real_caffe(tmp_path, case):
    text = CAFFE_CASES[case] + CONV.replace("GROUP", "")
    path = write(tmp_path, text)
    if live_caffe():
        want = _caffe_shapes(path)
        if REGEN:
            stored = json.loads(_SHAPES_GOLDEN.read_text()) if _SHAPES_GOLDEN.exists() else {}
            stored[case] = want
            _SHAPES_GOLDEN.write_text(json.dumps(stored, indent=1, sort_keys=True) + "\n")
    else:
        stored = json.loads(_SHAPES_GOLDEN.read_text())
        if case not in stored:
            pytest.skip(f"real Caffe is not installed and {_SHAPES_GOLDEN.name} has no entry {case}")
        want = stored[case]
    from caffe2onnx.parser.data_layers import stated_shapes
    from caffe2onnx.parser.text import parse_prototxt
    layer = parse_prototxt(CAFFE_CASES[case]).layer[0]
    ours = {top: list(s.dims) for top, s in stated_shapes(layer).items()}
    assert ours == {top: want[top] for top in ours}
    net = caffe2onnx.load(path, random_weights=0)
    assert list(net.shape("data")) == want["data"] and list(net.shape("conv")) == want["conv"]


def test_data_without_stated_shape_names_input_and_layer(tmp_path):
    text = _net('layer { name: "mnist" type: "Data" top: "data" top: "label" data_param { batch_size: 64 } }\n')
    with pytest.raises(ShapeError) as e:
        load_text(tmp_path, text, random_weights=0)
    msg = str(e.value)
    assert "\n" not in msg
    assert "'data' (top of Data layer 'mnist': batch 64 from data_param.batch_size; the data it reads decides the channels, height, width" in msg
    assert "input_shapes={'data': (64,C,H,W)}" in msg and "--input-shape data=64,C,H,W" in msg
    net = load_text(tmp_path, text, random_weights=0, input_shapes={"data": (1, 2, 6, 6)})
    assert net.inputs == ("data",) and net.shape("conv") == (1, 4, 4, 4)


@pytest.mark.parametrize("kind", ["HDF5Data", "Python"])
def test_layers_that_state_no_shape_need_input_shapes(tmp_path, kind):
    params = ('hdf5_data_param { source: "x.txt" batch_size: 10 }' if kind == "HDF5Data"
              else 'python_param { module: "caffe2onnx_never_imported_xyz" layer: "L" }')
    text = _net(f'layer {{ name: "feed" type: "{kind}" top: "data" top: "label" {params} }}\n')
    with pytest.raises(ShapeError, match=f"'data' \\(top of {kind} layer 'feed'"):
        load_text(tmp_path, text, random_weights=0)
    net = load_text(tmp_path, text, random_weights=0, input_shapes={"data": (2, 3, 5, 5)})
    assert net.inputs == ("data",) and [l.type for l in net.layers] == ["Convolution"]
    assert "caffe2onnx_never_imported_xyz" not in sys.modules


def test_python_layer_with_bottoms_is_not_a_data_layer(tmp_path):
    text = ('layer { name: "in" type: "Input" top: "data" input_param { shape { dim: 1 dim: 2 } } }\n'
            'layer { name: "py" type: "Python" bottom: "data" top: "out" python_param { module: "m" layer: "L" } }\n')
    with pytest.raises(UnsupportedLayerError, match="'py' \\(type Python\\)"):
        load_text(tmp_path, text)


def _conv_caffemodel(tmp_path, weight_shape, layer_type="Convolution"):
    path = tmp_path / "w.caffemodel"
    rng = np.random.default_rng(0)
    w = rng.standard_normal(weight_shape).astype(np.float32)
    write_caffemodel(path, [("conv", layer_type, [w, np.zeros(4, np.float32)])])
    return path


@pytest.mark.parametrize("group, weight_shape, channels", [(1, (4, 3, 3, 3), 3), (2, (4, 3, 3, 3), 6)])
def test_channels_come_from_the_first_convolutions_weights(tmp_path, group, weight_shape, channels):
    text = _net('layer { name: "d" type: "Data" top: "data" top: "label" data_param { batch_size: 2 } '
                'transform_param { crop_size: 7 } }\n', group)
    weights = _conv_caffemodel(tmp_path, weight_shape)
    net = caffe2onnx.load(write(tmp_path, text), weights)
    assert net.shape("data") == (2, channels, 7, 7)
    caffe2onnx.converter.build(net).check()
    with pytest.raises(ShapeError, match="the data it reads decides the channels"):  # random weights say nothing about the data
        load_text(tmp_path, text, random_weights=0)


def test_channels_of_a_deconvolution_reader(tmp_path):
    text = ('layer { name: "d" type: "Data" top: "data" data_param { batch_size: 1 } transform_param { crop_size: 5 } }\n'
            'layer { name: "conv" type: "Deconvolution" bottom: "data" top: "conv" '
            'convolution_param { num_output: 4 kernel_size: 3 } }\n')
    net = caffe2onnx.load(write(tmp_path, text), _conv_caffemodel(tmp_path, (6, 4, 3, 3), "Deconvolution"))
    assert net.shape("data") == (1, 6, 5, 5) and net.shape("conv") == (1, 4, 7, 7)


def test_label_read_by_a_kept_layer_is_an_input_of_batch_shape(tmp_path):
    text = ('layer { name: "d" type: "Data" top: "data" top: "label" data_param { batch_size: 3 } '
            'transform_param { crop_size: 4 mean_value: 0 mean_value: 0 } }\n'
            'layer { name: "p" type: "Power" bottom: "label" top: "scaled" power_param { scale: 2 } }\n'
            'layer { name: "r" type: "ReLU" bottom: "data" top: "r" }\n')
    net = load_text(tmp_path, text)
    assert net.inputs == ("label", "data")
    assert net.shape("label") == (3,) and net.shape("data") == (3, 2, 4, 4)


def test_phase_train_picks_the_train_data_layer(tmp_path):
    text = _net('layer { name: "train" type: "Data" top: "data" top: "label" include { phase: TRAIN } '
                'data_param { batch_size: 256 } transform_param { crop_size: 9 mean_value: 1 mean_value: 2 } }\n'
                'layer { name: "test" type: "Data" top: "data" top: "label" include { phase: TEST } '
                'data_param { batch_size: 50 } transform_param { crop_size: 9 mean_value: 1 mean_value: 2 } }\n')
    assert load_text(tmp_path, text, random_weights=0).shape("data") == (50, 2, 9, 9)
    assert load_text(tmp_path, text, random_weights=0, phase="TRAIN").shape("data") == (256, 2, 9, 9)


def test_v1_data_layer_crop_size_moves_to_transform_param(tmp_path):
    text = ('layers { name: "d" type: DATA top: "data" top: "label" data_param { batch_size: 2 crop_size: 6 } '
            'transform_param { mean_value: 1 mean_value: 2 mean_value: 3 } }\n'
            'layers { name: "r" type: RELU bottom: "data" top: "r" }\n')
    assert load_text(tmp_path, text).shape("r") == (2, 3, 6, 6)


@pytest.mark.parametrize("params, match", [
    ('shape { dim: 1 } num: 1 channels: 1 height: 1 width: 1', "both shape and legacy"),
    ('shape { dim: 1 } shape { dim: 2 } shape { dim: 3 }', "give 'shape' once or once per top \\(2\\)"),
    ('num: 1 num: 2 num: 3 channels: 1 height: 1 width: 1', "give 'num' once or once per top \\(2\\)"),
])
def test_dummy_data_shape_rules(tmp_path, params, match):
    text = _net(f'layer {{ name: "d" type: "DummyData" top: "data" top: "label" dummy_data_param {{ {params} }} }}\n')
    with pytest.raises(NetStructureError, match=match):
        load_text(tmp_path, text, random_weights=0)


def test_memory_data_needs_every_size(tmp_path):
    text = _net('layer { name: "d" type: "MemoryData" top: "data" top: "label" memory_data_param { '
                'batch_size: 2 channels: 3 height: 6 } }\n')
    with pytest.raises(NetStructureError, match="must all be positive, got \\[2, 3, 6, 0\\]"):
        load_text(tmp_path, text, random_weights=0)


def test_resize_fit_small_size_leaves_the_size_to_the_image(tmp_path):
    text = _net('layer { name: "d" type: "AnnotatedData" top: "data" top: "label" data_param { batch_size: 1 } '
                'transform_param { mean_value: 1 mean_value: 2 mean_value: 3 resize_param { resize_mode: FIT_SMALL_SIZE height: 9 '
                'width: 9 } } }\n')
    with pytest.raises(ShapeError, match="decides the height, width"):
        load_text(tmp_path, text, random_weights=0)


def test_two_data_layers_with_one_top_are_refused(tmp_path):
    layer = 'layer {{ name: "{}" type: "MemoryData" top: "data" memory_data_param {{ batch_size: 1 channels: 1 height: 5 width: 5 }} }}\n'
    with pytest.raises(NetStructureError, match="produced by multiple sources"):
        load_text(tmp_path, _net(layer.format("a") + layer.format("b")), random_weights=0)


def test_image_data_needs_new_height_and_new_width_together(tmp_path):
    text = _net('layer { name: "d" type: "ImageData" top: "data" top: "label" image_data_param { new_height: 8 } }\n')
    with pytest.raises(NetStructureError, match="set image_data_param new_height and new_width together"):
        load_text(tmp_path, text, random_weights=0)
