"""Models as they come: every train_val/train_test/test net of the shared corpus converts in both
phases, with input_shapes only where the net states no shape; the real trained LeNet converts from
its caffemodel alone and computes what real Caffe computes with the same caffemodel."""
import numpy as np
import pytest

import caffe2onnx
from caffe2onnx.converter import build
from caffe2onnx.errors import NetStructureError, ShapeError, UnsupportedLayerError
from caffe2onnx.validators.caffe_reference import blobs_for_net, run_caffe
from harness import CORPUS, GOLDEN, REGEN, assert_close, corpus, live_caffe, onnx_blobs, OPSETS

# Layer types whose support arrives with another change; a net using them must fail naming them.
EXPECTED_FOR_NOW: set[str] = set()
# Nets with a data layer in one phase only: in the other phase nothing produces their input,
# which real Caffe refuses too ("Unknown bottom blob").
ONE_PHASE = {"MobileNetSSD_test.prototxt": "TEST", "MobileNetSSD_train.prototxt": "TRAIN"}
# Nets whose data layers do not state the whole shape (it is in the LMDB/HDF5 data, or in a
# mean_file the corpus lacks): the test gives it, and checks the error names input and layer first.
NEEDS_SHAPE = {
    "cifar10": {"data": (1, 3, 32, 32)},
    "hdf5_classification": {"data": (2, 4)},
    "siamese": {"pair_data": (2, 2, 28, 28)},
    "mnist": {"data": (2, 1, 28, 28)},
    "bvlc_alexnet": {"data": (1, 3, 227, 227)},
    "bvlc_reference_caffenet": {"data": (1, 3, 227, 227)},
    "pascal_finetune": {"data": (1, 3, 227, 227)},
}
STAGES = {"mnist_autoencoder": {"TEST": ["test-on-test"]}}


def _nets():
    if not CORPUS.exists():
        return ["<corpus absent>"]
    names = sorted(str(p.relative_to(CORPUS)) for p in CORPUS.rglob("*.prototxt"))
    return [n for n in names if any(k in n.rsplit("/", 1)[-1] for k in ("train", "test", "_val", "autoencoder"))]


@pytest.mark.parametrize("phase", ["TEST", "TRAIN"])
@pytest.mark.parametrize("rel", _nets())
def test_train_val_net_converts(rel, phase):
    """Converts in TEST; in TRAIN (only the data layers differ) it loads, without weights, to stay fast."""
    path = corpus(rel)
    stages = next((s.get(phase, ()) for k, s in STAGES.items() if k in rel), ())
    shapes = next((s for k, s in NEEDS_SHAPE.items() if k in rel), None)
    only = ONE_PHASE.get(rel.rsplit("/", 1)[-1])
    if only is not None and phase != only:
        with pytest.raises(NetStructureError, match="which no layer produces"):
            caffe2onnx.load(path, phase=phase, stages=stages)
        return
    try:
        if shapes is not None:
            with pytest.raises(ShapeError, match=f"no shape for input\\(s\\) '{next(iter(shapes))}' \\(top of "):
                caffe2onnx.load(path, phase=phase, stages=stages)
        seed = 0 if phase == "TEST" else None
        net = caffe2onnx.load(path, phase=phase, stages=stages, random_weights=seed, input_shapes=shapes)
    except UnsupportedLayerError as e:
        types = {t for _, t, _ in e.problems}
        assert types <= EXPECTED_FOR_NOW, f"unexpected unsupported types {types - EXPECTED_FOR_NOW}: {e}"
        pytest.xfail(f"needs layer type(s) {sorted(types)}")
    assert not any(l.type in ("Data", "ImageData", "HDF5Data", "WindowData", "SoftmaxWithLoss", "Accuracy")
                   for l in net.layers)
    assert "label" not in net.inputs
    if phase == "TEST":
        build(net).check()


@pytest.mark.parametrize("rel, phase, want", [
    ("bvlc_caffe/models/bvlc_googlenet/train_val.prototxt", "TEST", (50, 3, 224, 224)),
    ("bvlc_caffe/models/bvlc_googlenet/train_val.prototxt", "TRAIN", (32, 3, 224, 224)),
    ("architectures/squeezenet/SqueezeNet_v1.1/train_val.prototxt", "TEST", (25, 3, 227, 227)),
    ("bvlc_caffe/examples/feature_extraction/imagenet_val.prototxt", "TEST", (50, 3, 227, 227)),
])
def test_declared_shapes_come_from_the_data_layer(rel, phase, want):
    net = caffe2onnx.load(corpus(rel), phase=phase)
    assert net.inputs == ("data",) and net.shape("data") == want


LENET = "trained/lenet_mnist_ethereon/lenet_iter_10000.caffemodel"
# The trained net's deploy form, written here: an Input layer in place of its Data layer, no loss.
LENET_DEPLOY = """name: "LeNet"
layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 1 dim: 1 dim: 28 dim: 28 } } }
layer { name: "conv1" type: "Convolution" bottom: "data" top: "conv1"
  convolution_param { num_output: 20 kernel_size: 5 stride: 1 } }
layer { name: "pool1" type: "Pooling" bottom: "conv1" top: "pool1" pooling_param { pool: MAX kernel_size: 2 stride: 2 } }
layer { name: "conv2" type: "Convolution" bottom: "pool1" top: "conv2"
  convolution_param { num_output: 50 kernel_size: 5 stride: 1 } }
layer { name: "pool2" type: "Pooling" bottom: "conv2" top: "pool2" pooling_param { pool: MAX kernel_size: 2 stride: 2 } }
layer { name: "ip1" type: "InnerProduct" bottom: "pool2" top: "ip1" inner_product_param { num_output: 500 } }
layer { name: "relu1" type: "ReLU" bottom: "ip1" top: "ip1" }
layer { name: "ip2" type: "InnerProduct" bottom: "ip1" top: "ip2" inner_product_param { num_output: 10 } }
"""


def test_trained_lenet_caffemodel_alone_states_what_it_can():
    with pytest.raises(ShapeError) as e:
        caffe2onnx.load(caffemodel=corpus(LENET))
    assert ("'data' (top of Data layer 'mnist': batch 64 from data_param.batch_size, 1 channel(s) from the "
            "weights of layer 'conv1'; the data it reads decides the height, width)") in str(e.value)
    as_net = caffe2onnx.load(corpus(LENET), input_shapes={"data": (64, 1, 28, 28)})  # given as the net
    assert as_net.inputs == ("data",) and as_net.outputs == ("ip2",)
    assert [l.name for l in as_net.layers] == ["conv1", "pool1", "conv2", "pool2", "ip1", "relu1", "ip2"]


def test_trained_lenet_alone_matches_real_caffe(tmp_path):
    model = corpus(LENET)
    net = caffe2onnx.load(caffemodel=model, input_shapes={"data": (1, 1, 28, 28)})
    golden = GOLDEN / "lenet_trained_caffe.npz"
    if live_caffe():
        inputs = {"data": np.random.default_rng(0).random((1, 1, 28, 28), dtype=np.float32)}  # pixels * 1/256
        deploy = tmp_path / "deploy.prototxt"
        deploy.write_text(LENET_DEPLOY)
        want = blobs_for_net(net, run_caffe(deploy, model, inputs))
        if REGEN:
            np.savez_compressed(golden, **{f"in/{k}": v for k, v in inputs.items()},
                                **{f"out/{k}": v for k, v in want.items()})
    elif golden.exists():
        with np.load(golden, allow_pickle=False) as g:
            inputs = {k[3:]: g[k] for k in g.files if k.startswith("in/")}
            want = {k[4:]: g[k] for k in g.files if k.startswith("out/")}
    else:
        pytest.skip("real Caffe is not installed and there is no golden file for the trained LeNet")
    assert set(want) == set(net.tensors)  # every blob, the one ReLU overwrites in place included
    for opset in sorted({OPSETS[0], OPSETS[-1]}):
        assert_close(onnx_blobs(net, opset, inputs), want, net.tensors)
    assert int(np.argmax(want["ip2"])) == int(np.argmax(onnx_blobs(net, OPSETS[-1], inputs)["ip2"]))
