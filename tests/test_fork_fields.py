"""Fork fields in the schema: prototxt by name, caffemodels by each fork's own numbers, refusals."""
from __future__ import annotations

import numpy as np
import pytest

import caffe2onnx
from caffe2onnx import proto
from caffe2onnx.converter import build_model, check_model, max_opset
from caffe2onnx.errors import CaffeParseError, ShapeError, UnsupportedLayerError
from caffe2onnx.layers import SPECS
from caffe2onnx.parser.caffemodel import read_caffemodel
from caffe2onnx.wire import len_header
from test_fork_layers import fork_net, inputs_text, layer

# One layer per fork field named in issue #9's "Why", plus DenseImageData feeding the net.
FIELDS_NET = """
layer { name: "data" type: "DenseImageData" top: "data" top: "label" include { phase: TRAIN }
  dense_image_data_param { source: "train.txt" batch_size: 4 shuffle: true new_height: 8 new_width: 8 } }
layer { name: "input" type: "Input" top: "data" top: "rois" include { phase: TEST }
  input_param { shape { dim: 1 dim: 6 dim: 8 dim: 8 } shape { dim: 2 dim: 5 } } }
layer { name: "bn_segnet" type: "BN" bottom: "data" top: "data"
  bn_param { scale_filler { type: "constant" value: 1 } shift_filler { type: "constant" value: 0.001 }
             bn_mode: INFERENCE } }
layer { name: "bn_psp" type: "BN" bottom: "data" top: "bnp"
  bn_param { slope_filler { type: "constant" value: 1 } bias_filler { type: "constant" value: 0 }
             frozen: true momentum: 0.95 eps: 1e-5 } }
layer { name: "shuffle" type: "ShuffleChannel" bottom: "bnp" top: "shuffle" shuffle_channel_param { group: 3 } }
layer { name: "interp" type: "Interp" bottom: "shuffle" top: "interp" interp_param { zoom_factor: 2 pad_beg: 0 } }
layer { name: "roi" type: "ROIPooling" bottom: "interp" bottom: "rois" top: "pooled"
  roi_pooling_param { pooled_h: 2 pooled_w: 2 spatial_scale: 0.5 } }
"""


def test_every_fork_field_loads_and_converts(tmp_path):
    ones = np.ones((1, 6, 1, 1), np.float32)
    _, _, net = fork_net(tmp_path, FIELDS_NET, {"bn_psp": [ones, ones * 0, ones * 0, ones]})
    assert [l.type for l in net.layers] == ["BN", "BN", "ShuffleChannel", "Interp", "ROIPooling"]
    assert net.layer("bn_segnet").params.fork == "segnet" and not net.layer("bn_segnet").params.batch_stats
    assert net.layer("bn_psp").params.fork == "pspnet"
    assert net.shape("pooled") == (2, 6, 2, 2) and net.shape("interp") == (1, 6, 15, 15)
    for opset in (11, max_opset()):
        check_model(build_model(net, opset=opset))


def test_dense_image_data_is_dropped_like_bvlc_data_layers(tmp_path):
    path = tmp_path / "train.prototxt"
    path.write_text('layer { name: "data" type: "DenseImageData" top: "data" top: "label" '
                    'dense_image_data_param { source: "train.txt" batch_size: 4 crop_width: 8 crop_height: 8 } }\n'
                    + layer("ShuffleChannel", "shuffle_channel_param { group: 2 }"))
    net = caffe2onnx.load(path, input_shapes={"data": (1, 4, 8, 8)})
    assert net.inputs == ("data",) and [l.type for l in net.layers] == ["ShuffleChannel"]


def _raw_layer(name: str, type_: str, bottoms=(), tops=(), fields=(), shape=None) -> bytes:
    """A LayerParameter in binary with extra (field number, message) pairs appended verbatim."""
    msg = proto.LayerParameter(name=name, type=type_, bottom=list(bottoms), top=list(tops))
    if shape is not None:
        msg.input_param.shape.add().dim.extend(shape)
    body = msg.SerializeToString()
    for number, sub in fields:
        data = sub.SerializeToString()
        body += len_header(number, len(data)) + data
    return len_header(100, len(body)) + body  # NetParameter.layer


def _caffemodel(tmp_path, *layers: bytes):
    path = tmp_path / "alone.caffemodel"
    path.write_bytes(b"".join(layers))
    return path


def _input(shape) -> bytes:
    return _raw_layer("input", "Input", tops=["data"], shape=shape)


def test_segnet_caffemodel_decodes_bn_mode_from_its_own_numbers(tmp_path):
    # caffe-segnet: LayerParameter 45, BNParameter.bn_mode = 3 (an enum; PSPNet's 3 is a float).
    seg = proto.message_class("SegNetBNParameter")(bn_mode=1)
    path = _caffemodel(tmp_path, _raw_layer("bn", "BN", ["data"], ["out"], [(45, seg)]))
    param = read_caffemodel(path)[0].layer[0]
    assert param.HasField("bn_param_segnet") and not param.HasField("bn_param")
    got = SPECS.parse(param)
    assert (got.fork, got.batch_stats) == ("segnet", False)


def test_pspnet_caffemodel_bn_number_152(tmp_path):
    psp = proto.message_class("BNParameter")(eps=0.5, momentum=0.95, frozen=True)
    path = _caffemodel(tmp_path, _raw_layer("bn", "BN", ["data"], ["out"], [(152, psp)]))
    got = SPECS.parse(read_caffemodel(path)[0].layer[0])
    assert (got.fork, got.eps) == ("pspnet", 0.5)


def test_interp_caffemodel_alone_with_pspnet_number_143_is_refused(tmp_path):
    # hszhao/PSPNet stores interp_param as 143, BVLC's input_param: it must never be read as defaults.
    interp = proto.message_class("InterpParameter")(zoom_factor=2)
    path = _caffemodel(tmp_path, _input((1, 2, 3, 3)), _raw_layer("up", "Interp", ["data"], ["out"], [(143, interp)]))
    with pytest.raises(CaffeParseError, match=r"layer 'up' \(type Interp\).*field 143.*deploy prototxt"):
        caffe2onnx.load(caffemodel=path)


def test_interp_caffemodel_alone_with_number_2143_loads(tmp_path):
    interp = proto.message_class("InterpParameter")(zoom_factor=2)
    path = _caffemodel(tmp_path, _input((1, 2, 3, 3)), _raw_layer("up", "Interp", ["data"], ["out"], [(2143, interp)]))
    assert caffe2onnx.load(caffemodel=path).shape("out") == (1, 2, 5, 5)


def test_rfcn_psroi_number_10001_decodes(tmp_path):
    ps = proto.message_class("PSROIPoolingParameter")(spatial_scale=0.5, output_dim=2, group_size=2)
    rois = _raw_layer("rin", "Input", tops=["rois"], shape=(3, 5))
    path = _caffemodel(tmp_path, _input((1, 8, 5, 5)), rois,
                       _raw_layer("ps", "PSROIPooling", ["data", "rois"], ["out"], [(10001, ps)]))
    net = caffe2onnx.load(caffemodel=path)
    assert net.shape("out") == (3, 2, 2, 2) and net.layer("ps").params.spatial_scale == 0.5


REFUSED = {  # layer text -> (error, message part)
    "bn_ambiguous": (layer("BN"), UnsupportedLayerError, "tells caffe-segnet's BN"),
    "bn_mixed": (layer("BN", "bn_param { bn_mode: INFERENCE eps: 0.1 }"), UnsupportedLayerError, "mixes"),
    "interp_positive_pad": (layer("Interp", "interp_param { zoom_factor: 2 pad_beg: 1 }"), UnsupportedLayerError,
                            "interp_param.pad_beg: the fork supports only non-positive"),
    "interp_no_size": (layer("Interp", "interp_param { height: 3 }"), UnsupportedLayerError, "give zoom_factor"),
    "interp_crop_all": (layer("Interp", "interp_param { zoom_factor: 2 pad_beg: -3 pad_end: -2 }"), ShapeError,
                        "the crop leaves"),
    "convdw_no_stride": (layer("ConvolutionDepthwise", "convolution_param { kernel_size: 3 pad: 1 }"),
                         UnsupportedLayerError, "convolution_param.stride: the fork needs 1 or 2 values"),
    "convdw_kernel_h_only": (layer("ConvolutionDepthwise", "convolution_param { kernel_h: 3 kernel_size: 3 pad: 0 "
                             "stride: 1 }"), UnsupportedLayerError, "only when both are set"),
    "convdw_axis": (layer("ConvolutionDepthwise", "convolution_param { kernel_size: 3 pad: 0 stride: 1 axis: 2 }"),
                    UnsupportedLayerError, "convolution_param.axis is not supported"),
    "shuffle_group": (layer("ShuffleChannel", "shuffle_channel_param { group: 4 }"), ShapeError, "must divide"),
    "shuffle_in_place": (layer("ShuffleChannel", "shuffle_channel_param { group: 2 }", top="data"),
                         UnsupportedLayerError, "runs in place"),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_refused_with_one_clear_line(tmp_path, case):
    text, error, part = REFUSED[case]
    path = tmp_path / "net.prototxt"
    path.write_text(inputs_text(data=(1, 6, 4, 4)) + text)
    with pytest.raises(error) as info:
        caffe2onnx.load(path, random_weights=0)
    assert part in str(info.value) and "'l'" in str(info.value)


@pytest.mark.parametrize("text, part", [
    (layer("ROIPooling", "roi_pooling_param { pooled_h: 2 pooled_w: 2 spatial_scale: 0 }", ("data", "rois")),
     "spatial_scale: must be positive"),
    (layer("ROIPooling", "roi_pooling_param { pooled_w: 2 }", ("data", "rois")), "must be > 0"),
    (layer("PSROIPooling", "psroi_pooling_param { spatial_scale: 1 output_dim: 2 group_size: 2 }", ("data", "rois")),
     "must be output_dim * group_size^2 = 8"),
])
def test_roi_refusals(tmp_path, text, part):
    path = tmp_path / "net.prototxt"
    path.write_text(inputs_text(data=(1, 6, 4, 4), rois=(2, 5)) + text)
    with pytest.raises((UnsupportedLayerError, ShapeError), match=part.replace("^", r"\^").replace("*", r"\*")):
        caffe2onnx.load(path, random_weights=0)


def test_segnet_bn_weights_must_be_two_blobs(tmp_path):
    """A PSPNet caffemodel (4 blobs) under a SegNet-style prototxt is a clear weight mismatch."""
    from caffe2onnx.caffemodel_writer import write_caffemodel
    from caffe2onnx.errors import WeightMismatchError
    path = tmp_path / "net.prototxt"
    path.write_text(inputs_text(data=(1, 3, 2, 2)) + layer("BN", "bn_param { bn_mode: INFERENCE }"))
    model = tmp_path / "w.caffemodel"
    write_caffemodel(model, [("l", "BN", [np.ones((1, 3, 1, 1), np.float32)] * 4)])
    with pytest.raises(WeightMismatchError, match="caffemodel has 4 blob"):
        caffe2onnx.load(path, model)


FORK_TYPES = ["BN", "Interp", "ConvolutionDepthwise", "DepthwiseConvolution", "ShuffleChannel", "Axpy", "ROIPooling",
              "PSROIPooling"]


@pytest.mark.parametrize("type_", FORK_TYPES)
def test_fork_mapping_names_its_source_and_limits(type_):
    from caffe2onnx.op_mappings import MAPPINGS
    from caffe2onnx.validators.numpy_ref import FORWARDS
    doc = MAPPINGS.get(type_).fn.__doc__
    assert MAPPINGS.get(type_).doc and "\n    Source: " in doc and "\n    Limits: " in doc
    assert type_ in SPECS and type_ in FORWARDS


# Every fork type outside IN_PLACE_SAFE reads its bottom after writing its top (or changes its
# shape), so in place it is refused; test_loader_in_place.py counts these as covered.
FORK_IN_PLACE_REFUSED = {
    "Interp": ("interp_param { zoom_factor: 2 }", 1),
    "ShuffleChannel": ("shuffle_channel_param { group: 2 }", 1),
    "ConvolutionDepthwise": ("convolution_param { kernel_size: 3 pad: 1 stride: 1 }", 1),
    "DepthwiseConvolution": ("convolution_param { num_output: 6 kernel_size: 1 group: 6 }", 1),
    "Axpy": ("", 3),
    "ROIPooling": ("roi_pooling_param { pooled_h: 2 pooled_w: 2 }", 2),
    "PSROIPooling": ("psroi_pooling_param { spatial_scale: 1 output_dim: 3 group_size: 1 }", 2),
}


@pytest.mark.parametrize("type_", sorted(FORK_IN_PLACE_REFUSED))
def test_fork_type_in_place_is_refused(tmp_path, type_):
    body, n = FORK_IN_PLACE_REFUSED[type_]
    bottoms = ("data", "x", "y")[:n] if type_ == "Axpy" else ("data", "rois")[:n]
    path = tmp_path / "net.prototxt"
    path.write_text(inputs_text(data=(1, 6, 4, 4), x=(1, 6, 4, 4), y=(1, 6, 4, 4), rois=(2, 5))
                    + layer(type_, body, bottoms, top="data"))
    with pytest.raises(UnsupportedLayerError, match=rf"layer 'l' \(type {type_}\): runs in place"):
        caffe2onnx.load(path, random_weights=0)


# Fork types on IN_PLACE_SAFE: every step of both BN forward passes is elementwise after the
# statistics are read, so in place equals out of place (checked here; real Caffe lacks BN).
FORK_IN_PLACE_SAFE = {"BN"}


@pytest.mark.parametrize("body", ["bn_mode: INFERENCE", "bn_mode: LEARN", "eps: 0.01 frozen: true"])
def test_bn_in_place_equals_out_of_place(tmp_path, body):
    from caffe2onnx.validators.numpy_ref import run_numpy
    from harness import onnx_blobs
    text = (inputs_text(data=(2, 3, 4, 5)) + layer("Power", top="a", name="copy")
            + layer("BN", f"bn_param {{ {body} }}", ("a",), top="a", name="in_place")
            + layer("BN", f"bn_param {{ {body} }}", top="ref", name="out_of_place"))
    blobs = [np.full((1, 3, 1, 1), v, np.float32) for v in (1.5, -0.5, 0.25, 2.0)][:4 if "eps" in body else 2]
    _, _, net = fork_net(tmp_path, text, {"in_place": blobs, "out_of_place": blobs})
    x = {"data": np.random.default_rng(0).standard_normal((2, 3, 4, 5)).astype(np.float32)}
    for got in (run_numpy(net, x), onnx_blobs(net, 11, x), onnx_blobs(net, max_opset(), x)):
        np.testing.assert_array_equal(got["a"], got["ref"])


def test_dense_image_data_states_batch_and_channels_only(tmp_path):
    path = tmp_path / "train.prototxt"
    path.write_text('layer { name: "data" type: "DenseImageData" top: "data" top: "label" '
                    'dense_image_data_param { source: "train.txt" batch_size: 4 is_color: false } }\n'
                    + layer("ShuffleChannel", "shuffle_channel_param { group: 1 }"))
    with pytest.raises(ShapeError, match=r"'data'.*batch 4.*1 channel"):
        caffe2onnx.load(path)


def test_random_weights_give_pspnet_bn_a_positive_variance(tmp_path):
    from caffe2onnx.validators.numpy_ref import run_numpy
    path = tmp_path / "bn.prototxt"
    path.write_text(inputs_text(data=(1, 6, 4, 4))
                    + layer("BN", "bn_param { slope_filler { type: 'constant' value: 1 } eps: 1e-5 }"))
    net = caffe2onnx.load(path, random_weights=0)
    assert net.layer("l").params.fork == "pspnet" and (net.layer("l").weights[3] > 0).all()
    out = run_numpy(net, {"data": np.random.default_rng(0).standard_normal((1, 6, 4, 4)).astype(np.float32)})
    assert all(np.isfinite(v).all() for v in out.values())
