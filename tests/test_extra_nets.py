"""Whole nets with the extra layers.

SegNet- and ENet-shaped nets (conv, BatchNorm + Scale, MAX pooling with mask tops, SegNet's
Upsample with the mask): every blob before the first Upsample against real Caffe (live or golden),
every blob against the NumPy reference of SegNet's source, in onnxruntime at opset 11 and the newest.
Real Caffe here ignores Upsample's mask, so it is no judge from there on. MobileNetV2 with ReLU6:
every blob against real Caffe."""
import numpy as np
import pytest

import caffe2onnx
from caffe2onnx.caffemodel_writer import write_caffemodel
from harness import OPSETS, assert_close, input_layer, numpy_blobs, onnx_blobs, reference


def _conv(name, bottom, n, k=3, pad=1, stride=1):
    return (f'layer {{ name: "{name}" type: "Convolution" bottom: "{bottom}" top: "{name}" '
            f'convolution_param {{ num_output: {n} kernel_size: {k} pad: {pad} stride: {stride} }} }}\n')


def _bn_scale_relu(x):
    return (f'layer {{ name: "{x}_bn" type: "BatchNorm" bottom: "{x}" top: "{x}" }}\n'
            f'layer {{ name: "{x}_scale" type: "Scale" bottom: "{x}" top: "{x}" scale_param {{ bias_term: true }} }}\n'
            f'layer {{ name: "{x}_relu" type: "ReLU" bottom: "{x}" top: "{x}" }}\n')


def _pool(name, bottom):
    return (f'layer {{ name: "{name}" type: "Pooling" bottom: "{bottom}" top: "{name}" top: "{name}_mask" '
            f'pooling_param {{ pool: MAX kernel_size: 2 stride: 2 }} }}\n')


def _up(name, bottom, mask, extra=""):
    return (f'layer {{ name: "{name}" type: "Upsample" bottom: "{bottom}" bottom: "{mask}" top: "{name}" '
            f'upsample_param {{ scale: 2 {extra} }} }}\n')


# SegNet's encoder/decoder pattern at 2 levels, odd sizes handled as in the 360x480 deploy net
# (upsample_h/upsample_w give the pooled input's size back).
SEGNET = (input_layer((1, 3, 10, 14))
          + _conv("conv1", "data", 4) + _bn_scale_relu("conv1") + _pool("pool1", "conv1")
          + _conv("conv2", "pool1", 6) + _bn_scale_relu("conv2") + _pool("pool2", "conv2")
          + _up("up2", "pool2", "pool2_mask", "upsample_h: 5 upsample_w: 7")
          + _conv("conv2_D", "up2", 4) + _bn_scale_relu("conv2_D")
          + _up("up1", "conv2_D", "pool1_mask") + _conv("conv1_D", "up1", 3) + _bn_scale_relu("conv1_D")
          + 'layer { name: "prob" type: "Softmax" bottom: "conv1_D" top: "prob" }\n')

# ENet's initial block and a downsampling / upsampling bottleneck pair (BN as BatchNorm + Scale).
ENET = (input_layer((1, 3, 12, 16))
        + _conv("init_conv", "data", 5, stride=2)
        + 'layer { name: "init_pool" type: "Pooling" bottom: "data" top: "init_pool" '
          'pooling_param { pool: MAX kernel_size: 2 stride: 2 } }\n'
        + 'layer { name: "init" type: "Concat" bottom: "init_conv" bottom: "init_pool" top: "init" }\n'
        + 'layer { name: "init_bn" type: "BatchNorm" bottom: "init" top: "init" }\n'
        + 'layer { name: "init_prelu" type: "PReLU" bottom: "init" top: "init" }\n'
        + _pool("down_pool", "init") + _conv("down_conv", "init", 8, k=2, pad=0, stride=2)
        + _bn_scale_relu("down_conv")
        + 'layer { name: "down_pad" type: "Eltwise" bottom: "down_conv" bottom: "down_conv" top: "down" }\n'
        + _conv("up_reduce", "down", 8, k=1, pad=0)
        + _up("up_unpool", "up_reduce", "down_pool_mask")
        + 'layer { name: "up_sum" type: "Eltwise" bottom: "up_unpool" bottom: "up_unpool" top: "up" }\n'
        + 'layer { name: "up_relu" type: "ReLU" bottom: "up" top: "up" }\n')


@pytest.mark.parametrize("name,text", [("segnet", SEGNET), ("enet", ENET)])
def test_segnet_shaped_net(tmp_path, name, text):
    # Real Caffe runs the encoder (everything before the first Upsample: it cannot parse SegNet's
    # upsample fields); the whole net reuses the encoder's seeded weights.
    cut = text.index('type: "Upsample"')
    encoder = text[:text.rindex("layer {", 0, cut)]
    (tmp_path / "enc").mkdir()
    _, _, ref = reference(tmp_path / "enc", f"net_{name}_encoder", encoder, {})
    net_path, model_path = tmp_path / "net.prototxt", tmp_path / "net.caffemodel"
    net_path.write_text(text)
    seeded = caffe2onnx.load(net_path, random_weights=0)
    weights = {l.name: list(l.weights) for l in seeded.layers if l.weights}
    weights.update(ref.weights)
    write_caffemodel(model_path, ((l.name, l.type, weights.get(l.name, [])) for l in seeded.layers), seeded.name)
    net = caffe2onnx.load(net_path, model_path)
    encoder_tensors = [t for t in ref.blobs if t in net.tensors]
    assert len(encoder_tensors) >= 8 and len(encoder_tensors) < len(net.tensors)
    want = numpy_blobs(net, ref.inputs)
    assert_close(want, ref.blobs, encoder_tensors, what="NumPy reference")
    for opset in (OPSETS[0], OPSETS[-1]):
        got = onnx_blobs(net, opset, ref.inputs)
        assert_close(got, ref.blobs, encoder_tensors)
        assert_close(got, want, net.tensors, what=f"NumPy reference (SegNet source), opset {opset}:")
    # An unpooled plane holds at most one value per 2x2 window, zeros elsewhere.
    up = want["up1" if name == "segnet" else "up_unpool"]
    assert 0 < np.count_nonzero(up) <= up.size // 4


def test_mobilenet_v2_with_relu6(tmp_path):
    """The corpus MobileNetV2 with its ReLUs as in-place ReLU6 (as MobileNetV2 ports use it), at 32x32,
    seeded weights: every blob against real Caffe; without Caffe the output against its golden file."""
    from harness import GOLDEN, REGEN, corpus, live_caffe, reshaped_prototxt, seeded_digest
    from caffe2onnx.caffemodel_writer import write_net_weights
    from caffe2onnx.validators.caffe_reference import blobs_for_net, run_caffe
    src = corpus("architectures/mobilenet_shicai/mobilenet_v2_deploy.prototxt")
    shape = (1, 3, 32, 32)
    path = reshaped_prototxt(src, tmp_path / "at_size.prototxt", {"data": shape})
    text = path.read_text()
    assert text.count('type: "ReLU"') >= 30
    path.write_text(text.replace('type: "ReLU"', 'type: "ReLU6"'))
    net = caffe2onnx.load(path, random_weights=0)
    assert sum(l.type == "ReLU6" for l in net.layers) >= 30
    x = {"data": np.random.default_rng(1).standard_normal(shape).astype(np.float32)}
    golden = GOLDEN / "net_mobilenet_v2_relu6.npz"
    if live_caffe():
        model = tmp_path / "w.caffemodel"
        write_net_weights(model, net)
        want = blobs_for_net(net, run_caffe(path, model, x))
        if REGEN:
            np.savez_compressed(golden, digest=np.array(seeded_digest(net, x)),
                                **{f"out/{k}": want[k] for k in net.outputs})
    elif golden.exists():
        with np.load(golden, allow_pickle=False) as g:
            if str(g["digest"]) != seeded_digest(net, x):
                pytest.skip("this numpy generates other seeded weights or inputs than the golden file's")
            want = {k[4:]: g[k] for k in g.files if k.startswith("out/")}
    else:
        pytest.skip("real Caffe is not installed and there is no golden file")
    for opset in (OPSETS[0], OPSETS[-1]):
        got = onnx_blobs(net, opset, x, all_tensors=len(want) > len(net.outputs))
        assert_close(got, want, list(want), max_abs=1e-4, mean_abs=1e-5, relative=True)
    assert_close(numpy_blobs(net, x), want, list(want), max_abs=1e-4, mean_abs=1e-5, relative=True,
                 what="NumPy reference")
