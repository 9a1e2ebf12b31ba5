"""Upsample, Resize and BilinearInterpolate against the reference (brocolli) Caffe at every opset in
OPSETS (odd sizes included); Upsample's SegNet mask form against the NumPy reference of
alexgkendall/caffe-segnet's upsample_layer.cpp, a hand-computed case and OpenCV."""
import numpy as np
import pytest

import caffe2onnx
from caffe2onnx.errors import Caffe2OnnxError
from harness import OPSETS, check_case, input_layer, numpy_blobs, onnx_blobs


def _layer(type_: str, body: str = "", param: str = "", bottoms=("data",), top: str = "out") -> str:
    p = f"{param} {{ {body} }}" if body else ""
    bots = " ".join(f'bottom: "{b}"' for b in bottoms)
    return f'layer {{ name: "l" type: "{type_}" {bots} top: "{top}" {p} }}\n'


def _up(body: str) -> str:
    return _layer("Upsample", body, "upsample_param")


def _rs(body: str) -> str:
    return _layer("Resize", body, "resize_param")


def _bi(body: str) -> str:
    return _layer("BilinearInterpolate", body, "bilinear_interpolate_param")


# case id -> (input shape, layer text)
CASES = {
    "upsample_2": ((2, 3, 3, 4), _up("scale: 2")),
    "upsample_3_odd": ((1, 2, 3, 5), _up("scale: 3")),
    "upsample_default_1": ((1, 2, 3, 5), _up("")),
    "upsample_dims3": ((2, 3, 5), _up("scale: 2 dims_num: 3")),
    "resize_up_odd": ((1, 2, 5, 7), _rs("height: 11 width: 13")),
    "resize_up_2x": ((1, 2, 3, 4), _rs("height: 6 width: 8")),
    "resize_down": ((1, 2, 9, 8), _rs("height: 4 width: 5")),
    "resize_same": ((1, 2, 4, 5), _rs("height: 4 width: 5")),
    "resize_pyramid": ((1, 2, 5, 7), _rs("is_pyramid_test: true out_height_scale: 1.5 out_width_scale: 0.7")),
    "bilinear_align_up_odd": ((1, 2, 5, 7), _bi("dst_h: 11 dst_w: 12")),
    "bilinear_align_down": ((1, 2, 9, 8), _bi("dst_h: 4 dst_w: 3")),
    "bilinear_half_pixel_up_odd": ((1, 2, 5, 7), _bi("dst_h: 11 dst_w: 12 align_corners: false")),
    "bilinear_half_pixel_down": ((1, 2, 9, 8), _bi("dst_h: 4 dst_w: 3 align_corners: false")),
    "bilinear_half_pixel_one_row": ((1, 2, 4, 5), _bi("dst_h: 1 dst_w: 7 align_corners: false")),
    "bilinear_scale_factor": ((1, 2, 5, 6), _bi("scale_factor: 1.7")),
    "bilinear_scale_factor_half_pixel": ((1, 2, 5, 6), _bi("scale_factor: 2.5 align_corners: false")),
    "bilinear_dst_h_only": ((1, 2, 5, 6), _bi("dst_h: 8")),
    "bilinear_same_size": ((1, 2, 4, 5), _bi("dst_h: 4 dst_w: 5 align_corners: false")),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_resize_family(tmp_path, case):
    shape, text = CASES[case]
    check_case(tmp_path, f"resize_{case}", input_layer(shape) + text, {})


def test_resize_drops_edge_tap_hand_computed(tmp_path):
    """brocolli's Resize: 2 -> 4 columns, src = dst * 0.5; the last column reads x[1] * (1 - 0.5) only."""
    x = np.array([[[[2.0, 4.0]]]], np.float32)
    path = tmp_path / "net.prototxt"
    path.write_text(input_layer(x.shape) + _rs("height: 1 width: 4"))
    net = caffe2onnx.load(path)
    want = np.array([[[[2.0, 3.0, 4.0, 2.0]]]], np.float32)
    for opset in (OPSETS[0], OPSETS[-1]):
        np.testing.assert_allclose(onnx_blobs(net, opset, {"data": x})["out"], want, rtol=0, atol=1e-6)
    np.testing.assert_allclose(numpy_blobs(net, {"data": x})["out"], want, rtol=0, atol=1e-6)


_POOL = ('layer { name: "pool" type: "Pooling" bottom: "data" top: "pooled" top: "mask" '
         'pooling_param { pool: MAX kernel_size: 2 stride: 2 } }\n'
         'layer { name: "conv" type: "Convolution" bottom: "pooled" top: "feat" '
         'convolution_param { num_output: 2 kernel_size: 1 } }\n')


def _segnet_up(body: str) -> str:
    return _layer("Upsample", body, "upsample_param", ("feat", "mask"), "up")


SEGNET = {
    "scale2": ((1, 2, 6, 8), "scale: 2"),
    "scale2_odd_pad_out": ((1, 2, 5, 7), "scale: 2 pad_out_h: true pad_out_w: true"),
    "upsample_hw_odd": ((2, 2, 5, 7), "scale: 2 upsample_h: 5 upsample_w: 7"),
    "scale_hw": ((1, 2, 4, 6), "scale_h: 2 scale_w: 3"),
}


@pytest.mark.parametrize("case", sorted(SEGNET))
def test_segnet_upsample_onnx_matches_numpy(tmp_path, case):
    """The mask form: real Caffe here ignores the mask, so SegNet's source (the NumPy reference) is the judge."""
    shape, body = SEGNET[case]
    path = tmp_path / "net.prototxt"
    path.write_text(input_layer(shape) + _POOL + _segnet_up(body))
    net = caffe2onnx.load(path, random_weights=0)
    x = np.random.default_rng(1).standard_normal(shape).astype(np.float32)
    want = numpy_blobs(net, {"data": x})
    for opset in (OPSETS[0], OPSETS[-1]):
        got = onnx_blobs(net, opset, {"data": x})
        for name in net.tensors:
            np.testing.assert_allclose(got[name], want[name], rtol=0, atol=1e-5, err_msg=name)


def test_segnet_upsample_hand_computed(tmp_path):
    """upsample_layer.cpp: zeros, then top.flat[mask[i]] = bottom[i] per plane (2x2 max pool of a 2x4 input)."""
    x = np.array([[[[1, 5, 2, 0],
                    [4, 3, 8, 1]]]], np.float32)
    path = tmp_path / "net.prototxt"
    path.write_text(input_layer(x.shape) + _POOL.split("layer { name: \"conv\"")[0]
                    + _layer("Upsample", "scale: 2", "upsample_param", ("pooled", "mask"), "up"))
    net = caffe2onnx.load(path)
    want = np.array([[[[0, 5, 0, 0],
                       [0, 0, 8, 0]]]], np.float32)
    np.testing.assert_array_equal(numpy_blobs(net, {"data": x})["up"], want)
    for opset in (OPSETS[0], OPSETS[-1]):
        np.testing.assert_array_equal(onnx_blobs(net, opset, {"data": x})["up"], want)


# OpenCV is no independent check of the mask form: its Caffe importer has no Upsample type, and
# its MaxUnpool needs pool_k_h/pool_s_h/... parameters that a Caffe prototxt cannot carry.


@pytest.mark.parametrize("text,needle", [
    (_up("scale: 2 upsample_h: 4 upsample_w: 4"), "SegNet field"),
    (_up("scale: 0"), "positive"),
    (_up("scale: 2 dims_num: 3"), "dims_num"),
    (_layer("Upsample", "", "", ("data", "data"), "up"), "give it explicitly"),
    (_layer("Upsample", "scale: 3 pad_out_h: true", "upsample_param", ("data", "data"), "up"), "scale 2"),
    (_bi("dst_h: 4 scale_factor: 2"), "not both"),
    (_bi(""), "not both/neither"),
    (_bi("dst_h: 1 dst_w: 4"), "0 by 0"),
    (_rs("height: 4"), "height/width"),
])
def test_refusals(tmp_path, text, needle):
    path = tmp_path / "net.prototxt"
    path.write_text(input_layer((1, 2, 4, 5)) + text)
    with pytest.raises(Caffe2OnnxError, match=needle):
        caffe2onnx.load(path)


def test_segnet_caffemodel_field_137_refused(tmp_path):
    """A SegNet caffemodel's upsample_param sits at field 137 (embed_param here): refused, not misread."""
    from caffe2onnx.proto import message_class
    net = message_class("NetParameter")()
    net.input.append("data")
    net.input_dim.extend([1, 2, 4, 4])
    layer = net.layer.add(name="up", type="Upsample", bottom=["data", "data"], top=["up"])
    layer.embed_param.num_output = 2  # the bytes SegNet's `upsample_param { scale: 2 }` decode to here
    path = tmp_path / "net.caffemodel"
    path.write_bytes(net.SerializeToString())
    with pytest.raises(Caffe2OnnxError, match="field 137"):
        caffe2onnx.load(None, path)


@pytest.mark.parametrize("case", ["bilinear_align_up_odd", "resize_up_odd", "upsample_3_odd"])
def test_dynamic_batch(tmp_path, case):
    from harness import check_dynamic_batch
    shape, text = CASES[case]
    check_dynamic_batch(tmp_path, input_layer(shape) + text, OPSETS[-1])


def test_segnet_upsample_dynamic_batch(tmp_path):
    from caffe2onnx.converter import build_model, check_model
    from caffe2onnx.validators.onnx_runner import expose_tensors, run_onnx
    shape = (1, 2, 6, 8)
    path = tmp_path / "net.prototxt"
    path.write_text(input_layer(shape) + _POOL + _segnet_up("scale: 2"))
    net = caffe2onnx.load(path, random_weights=0)
    model = build_model(net, opset=OPSETS[-1], dynamic_batch=True)
    check_model(model)
    model = expose_tensors(model, net.tensors, {n: ("N", *t.shape[1:]) for n, t in net.tensors.items()})
    x = np.random.default_rng(3).standard_normal((3, *shape[1:])).astype(np.float32)
    single = [numpy_blobs(net, {"data": x[i:i + 1]})["up"] for i in range(3)]
    got, _ = run_onnx(model, {"data": x})
    np.testing.assert_allclose(got["up"], np.concatenate(single), rtol=0, atol=1e-5)
