"""Weights bound by layer name: extra/missing layers, counts, shapes, legacy blobs, V1 files."""
import numpy as np
import pytest

import caffe2onnx
from caffe2onnx import proto
from caffe2onnx.caffemodel_writer import write_caffemodel
from caffe2onnx.errors import WeightMismatchError
from harness import corpus
from loader_util import write

NET = ('layer { name: "in" type: "Input" top: "data" input_param { shape { dim: 2 dim: 3 dim: 4 dim: 4 } } }\n'
       'layer { name: "conv" type: "Convolution" bottom: "data" top: "conv" '
       'convolution_param { num_output: 5 kernel_size: 3 } }\n'
       'layer { name: "ip" type: "InnerProduct" bottom: "conv" top: "ip" inner_product_param { num_output: 7 } }\n')
RNG = np.random.default_rng(0)
W = {"conv": [RNG.standard_normal((5, 3, 3, 3), np.float32), RNG.standard_normal(5, np.float32)],
     "ip": [RNG.standard_normal((7, 20), np.float32), RNG.standard_normal(7, np.float32)]}


def _load(tmp_path, layers, text=NET):
    model = tmp_path / "w.caffemodel"
    write_caffemodel(model, layers)
    return caffe2onnx.load(write(tmp_path, text), model)


def test_binds_by_name_and_ignores_extra_layers(tmp_path):
    layers = [("loss", "SoftmaxWithLoss", []), ("ip", "InnerProduct", W["ip"]),
              ("unused", "Convolution", [np.ones((2, 2), np.float32)]), ("conv", "Convolution", W["conv"])]
    net = _load(tmp_path, layers)
    for layer in net.layers:
        for got, want in zip(layer.weights, W[layer.name]):
            np.testing.assert_array_equal(got, want)
        assert all(not w.flags.writeable for w in layer.weights)


def test_missing_layer_is_an_error(tmp_path):
    with pytest.raises(WeightMismatchError, match=r"layer 'ip' \(type InnerProduct\): no weights in the caffemodel"):
        _load(tmp_path, [("conv", "Convolution", W["conv"])])


def test_blob_count_and_shape_mismatch_name_both_shapes(tmp_path):
    with pytest.raises(WeightMismatchError, match=r"layer 'conv'.*1 blob\(s\) \[\[5, 3, 3, 3\]\].*needs 2"):
        _load(tmp_path, [("conv", "Convolution", W["conv"][:1]), ("ip", "InnerProduct", W["ip"])])
    bad = [np.zeros((5, 3, 2, 2), np.float32), W["conv"][1]]
    with pytest.raises(WeightMismatchError, match=r"blob 0 has shape \[5, 3, 2, 2\].*needs \[5, 3, 3, 3\]") as e:
        _load(tmp_path, [("conv", "Convolution", bad), ("ip", "InnerProduct", W["ip"][:1])])
    assert "layer 'ip'" in str(e.value)  # every mismatch reported at once


def _legacy_blob(arr, dims, double=False):
    b = proto.BlobProto(num=dims[0], channels=dims[1], height=dims[2], width=dims[3])
    (b.double_data if double else b.data).extend(arr.ravel().tolist())
    return b


def test_v1_caffemodel_with_legacy_4d_blobs_and_double_data(tmp_path):
    model = proto.NetParameter(name="v1")
    conv = model.layers.add(name="conv", type=proto.V1LayerParameter.CONVOLUTION)
    conv.blobs.add().CopyFrom(_legacy_blob(W["conv"][0], (5, 3, 3, 3)))
    conv.blobs.add().CopyFrom(_legacy_blob(W["conv"][1], (1, 1, 1, 5)))
    ip = model.layers.add(name="ip", type=proto.V1LayerParameter.INNER_PRODUCT)
    ip.blobs.add().CopyFrom(_legacy_blob(W["ip"][0].astype(np.float64), (1, 1, 7, 20), double=True))
    ip.blobs.add().CopyFrom(_legacy_blob(W["ip"][1], (1, 1, 1, 7)))
    path = tmp_path / "v1.caffemodel"
    path.write_bytes(model.SerializeToString())
    net = caffe2onnx.load(write(tmp_path, NET), path)
    ip_layer = net.layer("ip")
    assert ip_layer.weights[0].shape == (7, 20) and ip_layer.weights[1].shape == (7,)
    np.testing.assert_array_equal(ip_layer.weights[0], W["ip"][0])
    np.testing.assert_array_equal(net.layer("conv").weights[1], W["conv"][1])


def test_legacy_shape_that_does_not_pad_to_the_needed_shape_is_rejected(tmp_path):
    model = proto.NetParameter()
    conv = model.layers.add(name="conv", type=proto.V1LayerParameter.CONVOLUTION)
    conv.blobs.add().CopyFrom(_legacy_blob(W["conv"][0], (5, 3, 3, 3)))
    conv.blobs.add().CopyFrom(_legacy_blob(W["conv"][1], (1, 1, 5, 1)))
    path = tmp_path / "bad.caffemodel"
    path.write_bytes(model.SerializeToString())
    with pytest.raises(WeightMismatchError, match=r"blob 1 has shape \[1, 1, 5, 1\].*needs \[5\]"):
        caffe2onnx.load(write(tmp_path, NET), path)


def test_v1_prototxt_with_v1_caffemodel_equals_current_format(tmp_path):
    v1 = ('input: "data" input_dim: 2 input_dim: 3 input_dim: 4 input_dim: 4\n'
          'layers { name: "conv" type: CONVOLUTION bottom: "data" top: "conv" blobs_lr: 1 blobs_lr: 2 '
          'convolution_param { num_output: 5 kernel_size: 3 } }\n'
          'layers { name: "ip" type: INNER_PRODUCT bottom: "conv" top: "ip" inner_product_param { num_output: 7 } }\n')
    layers = [("conv", "Convolution", W["conv"]), ("ip", "InnerProduct", W["ip"])]
    a, b = _load(tmp_path, layers, v1), _load(tmp_path, layers)
    assert [(l.name, l.type, l.output_shapes) for l in a.layers] == [(l.name, l.type, l.output_shapes) for l in b.layers]


def test_caffemodel_alone_uses_its_embedded_net(tmp_path):
    from caffe2onnx.parser.text import read_prototxt
    net_param = read_prototxt(write(tmp_path, NET))
    for layer in net_param.layer:
        for arr in W.get(layer.name, []):
            blob = layer.blobs.add()
            blob.shape.dim.extend(arr.shape)
            blob.data.extend(arr.ravel().tolist())
    path = tmp_path / "alone.caffemodel"
    path.write_bytes(net_param.SerializeToString())
    net = caffe2onnx.load(caffemodel=path)
    assert [l.name for l in net.layers] == ["conv", "ip"] and net.shape("ip") == (2, 7)
    np.testing.assert_array_equal(net.layer("ip").weights[0], W["ip"][0])


def test_trained_lenet_binds_every_weight():
    root = corpus("trained/lenet_mnist_ethereon")
    net = caffe2onnx.load(root / "lenet.prototxt", root / "lenet_iter_10000.caffemodel")
    assert [l.name for l in net.layers if l.weights] == ["conv1", "conv2", "ip1", "ip2"]
    assert net.layer("ip1").weights[0].shape == (500, 800)
    assert net.parameter_count == 431080
    assert net.outputs == ("prob",)


@pytest.mark.parametrize("case", ["layer_convolution", "layer_inner_product"])
def test_layer_case_caffemodels_bind(case):
    root = corpus("caffe_layer_cases")
    net = caffe2onnx.load(root / f"{case}.prototxt", root / f"{case}.caffemodel")
    (layer,) = [l for l in net.layers if l.weights]
    assert [w.shape for w in layer.weights] == list(layer.weight_shapes)


def test_random_weights_are_seeded(tmp_path):
    a = caffe2onnx.load(write(tmp_path, NET), random_weights=3)
    b = caffe2onnx.load(write(tmp_path, NET), random_weights=3)
    c = caffe2onnx.load(write(tmp_path, NET), random_weights=4)
    assert all(np.array_equal(x, y) for la, lb in zip(a.layers, b.layers) for x, y in zip(la.weights, lb.weights))
    assert not np.array_equal(a.layers[0].weights[0], c.layers[0].weights[0])


SHARED_NET = """
layer { name: "in" type: "Input" top: "a" top: "b" input_param { shape { dim: 1 dim: 3 } shape { dim: 1 dim: 3 } } }
layer { name: "ip_a" type: "InnerProduct" bottom: "a" top: "ya" param { name: "w" } param { name: "bias" }
  inner_product_param { num_output: 2 } }
layer { name: "ip_b" type: "InnerProduct" bottom: "b" top: "yb" param { name: "w" } param { name: "bias" }
  inner_product_param { num_output: 2 } }
"""


def test_shared_params_are_one_blob(tmp_path):
    """Caffe's param { name } sharing (siamese nets): random weights are the first sharer's; from a
    caffemodel every sharer's copy is loaded into the one blob, so the last layer's wins."""
    path = tmp_path / "shared.prototxt"
    path.write_text(SHARED_NET)
    net = caffe2onnx.load(path, random_weights=0)
    a, b = net.layer("ip_a").weights, net.layer("ip_b").weights
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    w = {"ip_a": [np.ones((2, 3), np.float32), np.zeros(2, np.float32)],
         "ip_b": [np.full((2, 3), 2, np.float32), np.ones(2, np.float32)]}
    write_caffemodel(tmp_path / "w.caffemodel", [(n, "InnerProduct", blobs) for n, blobs in w.items()])
    net = caffe2onnx.load(path, tmp_path / "w.caffemodel")
    for name in ("ip_a", "ip_b"):
        assert (net.layer(name).weights[0] == 2).all() and (net.layer(name).weights[1] == 1).all()


def test_shared_params_last_copy_wins_in_real_caffe(tmp_path):
    from caffe2onnx.validators.caffe_reference import caffe_available, run_caffe
    if not caffe_available():
        pytest.skip("needs real Caffe (pycaffe)")
    path = tmp_path / "shared.prototxt"
    path.write_text(SHARED_NET)
    w = {"ip_a": [np.ones((2, 3), np.float32), np.zeros(2, np.float32)],
         "ip_b": [np.full((2, 3), 2, np.float32), np.ones(2, np.float32)]}
    write_caffemodel(tmp_path / "w.caffemodel", [(n, "InnerProduct", blobs) for n, blobs in w.items()])
    x = np.arange(3, dtype=np.float32).reshape(1, 3)
    out = run_caffe(path, tmp_path / "w.caffemodel", {"a": x, "b": x})
    want = x @ w["ip_b"][0].T + w["ip_b"][1]
    assert np.allclose(out[("ip_a", "ya")], want) and np.allclose(out[("ip_b", "yb")], want)
