"""Deployable models: baked input preprocessing, --fp16, validated on the raw image.

The tiny-net tests generate their own uint8 image and run without real Caffe and without
../shared (the reference is then the NumPy one); the GoogLeNet tests use the corpus image
and real Caffe where present.
"""
from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest

import caffe2onnx
from caffe2onnx.cli import main
from caffe2onnx.converter import build
from caffe2onnx.errors import ConversionError
from caffe2onnx.rewrites.preprocess import InputPreprocess, model_preprocess
from caffe2onnx.validators.check import validate
from caffe2onnx.validators.inputs import Preprocess, load_image
from harness import OPSETS, ROOT, corpus, input_layer, live_caffe
from loader_util import write

NET = input_layer((1, 3, 12, 10)) + """
layer { name: "conv" type: "Convolution" bottom: "data" top: "conv"
        convolution_param { num_output: 4 kernel_size: 3 } }
layer { name: "relu" type: "ReLU" bottom: "conv" top: "conv" }
layer { name: "fc" type: "InnerProduct" bottom: "conv" top: "fc" inner_product_param { num_output: 5 } }
"""
RGB_NHWC_U8 = InputPreprocess(mean=(104.0, 117.0, 123.0), scale=0.017, order="rgb", layout="nhwc", dtype="uint8")
CAT = "architectures/mobilenet_shicai/cat.jpg"


@pytest.fixture
def image(tmp_path):
    """A 20x16 RGB PNG whose channels differ, so a missed or doubled channel flip shows."""
    from PIL import Image
    rng = np.random.default_rng(7)
    pixels = rng.integers(0, 256, (16, 20, 3), dtype=np.uint8)
    pixels[..., 0] //= 4  # red dark, blue bright: R and B far apart
    path = tmp_path / "img.png"
    Image.fromarray(pixels).save(path)
    return path


def tiny(tmp_path):
    return caffe2onnx.load(write(tmp_path, NET), random_weights=0)


def _reference():
    return "caffe" if live_caffe() else "numpy"


@pytest.mark.parametrize("opset", [OPSETS[0], OPSETS[-1]])
def test_baked_graph_takes_the_raw_image(tmp_path, opset):
    model = build(tiny(tmp_path), opset=opset, preprocess=RGB_NHWC_U8).to_proto()
    x = model.graph.input[0]
    assert x.name == "data" and x.type.tensor_type.elem_type == 2  # uint8
    assert [d.dim_value for d in x.type.tensor_type.shape.dim] == [1, 12, 10, 3]
    assert [n.op_type for n in model.graph.node[:5]] == ["Cast", "Transpose", "Gather", "Sub", "Mul"]
    assert model_preprocess(model) == ("data", RGB_NHWC_U8)


def test_graph_computes_caffes_transform(tmp_path, image):
    """The baked nodes give exactly what Caffe's DataTransformer gives the net (inputs.load_image)."""
    net = tiny(tmp_path)
    pixels = load_image(image, (1, 3, 12, 10), Preprocess(channel_order="rgb"))  # resized RGB, 0..255
    raw = pixels.transpose(0, 2, 3, 1).round().astype(np.uint8)
    want = load_image(image, (1, 3, 12, 10), Preprocess(mean=RGB_NHWC_U8.mean, scale=0.017, channel_order="bgr"))
    np.testing.assert_array_equal(RGB_NHWC_U8.apply(raw), want)
    model = build(net, preprocess=RGB_NHWC_U8).to_proto()
    pre = [n for n in model.graph.node if n.name.startswith("caffe2onnx.preprocess/")][-1].output[0]
    model.graph.output.add(name=pre).type.tensor_type.elem_type = 1
    got = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run([pre], {"data": raw})
    np.testing.assert_allclose(got[0], want, rtol=1e-6, atol=1e-5)


@pytest.mark.parametrize("spec", [RGB_NHWC_U8, InputPreprocess(mean=(10.0,), order="bgr"),
                                  InputPreprocess(scale=0.5, layout="nhwc")])
def test_validate_feeds_raw_image_and_caffe_the_preprocessed(tmp_path, image, spec):
    net = tiny(tmp_path)
    model = build(net, preprocess=spec).to_proto()
    result = validate(None, None, model, net=net, reference=_reference(), input_specs=[str(image)])
    assert result.passed and len(result.blobs) == 3  # conv (before ReLU in place), conv, fc
    assert result.inputs["data"]["source"].startswith("image")


def test_validate_fails_when_the_baked_order_is_wrong(tmp_path, image):
    """The check is sensitive: a model claiming RGB input but flipping nothing does not match."""
    net = tiny(tmp_path)
    model = build(net, preprocess=InputPreprocess(mean=(104.0, 117.0, 123.0), layout="nhwc", dtype="uint8")).to_proto()
    for p in model.metadata_props:
        if p.key == "caffe2onnx.preprocess.order":
            p.value = "rgb"
    result = validate(None, None, model, net=net, reference="numpy", input_specs=[str(image)])
    assert not result.passed


def test_refusals(tmp_path):
    net = tiny(tmp_path)
    with pytest.raises(ConversionError, match="--mean has 2 values"):
        build(net, preprocess=InputPreprocess(mean=(1.0, 2.0)))
    with pytest.raises(ConversionError, match="input order must be"):
        InputPreprocess(order="rbg")
    two = caffe2onnx.load(write(tmp_path, NET + input_layer((1, 3, 4, 4), "other").replace('"input"', '"in2"'),
                                "two.prototxt"), random_weights=0)
    with pytest.raises(ConversionError, match="exactly one 4-D"):
        build(two, preprocess=RGB_NHWC_U8)


def test_cli_convert_bakes_and_validates(tmp_path):
    out = tmp_path / "m.onnx"
    rc = main(["convert", str(write(tmp_path, NET)), "--random-weights", "0", "-o", str(out), "-q", "--validate",
               "--validate-reference", _reference(), "--mean", "104,117,123", "--scale", "0.017",
               "--input-order", "rgb", "--input-layout", "nhwc", "--input-dtype", "uint8"])
    assert rc == 0
    import onnx
    assert model_preprocess(onnx.load(out)) == ("data", RGB_NHWC_U8)


# --fp16 needs the [fp16] extra
def _float16():
    pytest.importorskip("onnxconverter_common", reason="--fp16 needs onnxconverter-common (the [fp16] extra)")


@pytest.mark.parametrize("io", [False, True])
def test_fp16_model_validates_with_its_tolerance(tmp_path, image, io):
    _float16()
    net = tiny(tmp_path)
    model = build(net, fp16=True, fp16_io=io).to_proto()
    assert all(t.data_type == 10 for t in model.graph.initializer if t.data_type in (1, 10))
    io_type = 10 if io else 1
    assert {model.graph.input[0].type.tensor_type.elem_type, model.graph.output[0].type.tensor_type.elem_type} \
        == {io_type}
    result = validate(None, None, model, net=net, reference=_reference())
    assert result.passed and (result.atol, result.rtol) == (1e-2, 1e-2)


def test_fp16_with_baked_preprocessing(tmp_path, image):
    _float16()
    net = tiny(tmp_path)
    model = build(net, preprocess=RGB_NHWC_U8, fp16=True).to_proto()
    assert model.graph.input[0].type.tensor_type.elem_type == 2
    assert validate(None, None, model, net=net, reference=_reference(), input_specs=[str(image)]).passed


def test_fp16_without_the_library_is_a_clear_error(tmp_path, monkeypatch):
    import sys
    monkeypatch.setitem(sys.modules, "onnxconverter_common", None)
    with pytest.raises(ConversionError, match=r"pip install 'caffe2onnx\[fp16\]'"):
        build(tiny(tmp_path), fp16=True)


@pytest.mark.parametrize("fp16", [False, True])
def test_googlenet_baked_and_fp16_on_the_corpus_image(fp16):
    """Done-when: baked preprocessing (and --fp16) validate on GoogLeNet with a real image."""
    cat = corpus(CAT)
    if fp16:
        _float16()
    net = caffe2onnx.load(ROOT / "examples/googlenet/deploy.prototxt", random_weights=0,
                          input_shapes={"data": (1, 3, 224, 224)})
    model = build(net, preprocess=RGB_NHWC_U8, fp16=fp16).to_proto()
    result = validate(None, None, model, net=net, reference=_reference(), input_specs=[str(cat)])
    assert result.passed and len(result.blobs) == 142
    assert max(b.max_rel for b in result.blobs) < (5e-3 if fp16 else 1e-5)


# --dynamic-batch with the batch folded into another axis by Reshape/Flatten
FOLD_NETS = {
    "flat": input_layer((2, 3, 4, 5)) + """
layer { name: "conv" type: "Convolution" bottom: "data" top: "conv" convolution_param { num_output: 2 kernel_size: 3 } }
layer { name: "flat" type: "Reshape" bottom: "conv" top: "flat" reshape_param { shape { dim: -1 } } }
layer { name: "relu" type: "ReLU" bottom: "flat" top: "out" }
""",
    "softmax_and_back": input_layer((2, 4, 3, 3)) + """
layer { name: "rows" type: "Reshape" bottom: "data" top: "rows" reshape_param { shape { dim: -1 dim: 3 } } }
layer { name: "prob" type: "Softmax" bottom: "rows" top: "prob" }
layer { name: "back" type: "Reshape" bottom: "prob" top: "back" reshape_param { shape { dim: -1 dim: 4 dim: 3 dim: 3 } } }
layer { name: "conv" type: "Convolution" bottom: "back" top: "out" convolution_param { num_output: 2 kernel_size: 1 } }
""",
    "fold_later_axis": input_layer((2, 3, 2, 2)) + """
layer { name: "r" type: "Reshape" bottom: "data" top: "r" reshape_param { shape { dim: 4 dim: -1 } } }
layer { name: "flat0" type: "Flatten" bottom: "data" top: "f" flatten_param { axis: 0 } }
layer { name: "sig" type: "Sigmoid" bottom: "r" top: "out" }
""",
}


@pytest.mark.parametrize("name", sorted(FOLD_NETS))
@pytest.mark.parametrize("opset", [OPSETS[0], OPSETS[-1]])
def test_dynamic_batch_folded_into_an_axis_numpy(tmp_path, name, opset):
    """At batch 3, the model built at batch 2 gives what the reference computes on the net at batch 3."""
    from harness import numpy_blobs
    path = write(tmp_path, FOLD_NETS[name])
    built = build(caffe2onnx.load(path, random_weights=0), opset=opset, dynamic_batch=True)
    built.check()  # onnx checker, strict shape inference, onnxruntime load
    model = built.to_proto()
    shape = caffe2onnx.load(path).shape("data")
    net3 = caffe2onnx.load(path, random_weights=0, input_shapes={"data": (3, *shape[1:])})
    x = np.random.default_rng(0).standard_normal(net3.shape("data")).astype(np.float32)
    want = numpy_blobs(net3, {"data": x})
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    for o, got in zip(net3.outputs, sess.run(list(net3.outputs), {"data": x})):
        np.testing.assert_allclose(got, want[o], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", sorted(FOLD_NETS))
def test_dynamic_batch_folded_into_an_axis_caffe(tmp_path, name):
    """Real Caffe reshaped to batch 1 and 3 against the one model (every net output)."""
    from harness import blobs_for_net, run_caffe, write_net_weights
    if not live_caffe():
        pytest.skip("real Caffe (pycaffe) is not installed; the NumPy test above covers this without it")
    path, weights = write(tmp_path, FOLD_NETS[name]), tmp_path / "net.caffemodel"
    write_net_weights(weights, caffe2onnx.load(path, random_weights=0))
    net = caffe2onnx.load(path, weights)
    model = build(net, opset=OPSETS[-1], dynamic_batch=True).to_proto()
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    for batch in (1, 3):
        x = np.random.default_rng(batch).standard_normal((batch, *net.shape("data")[1:])).astype(np.float32)
        want = blobs_for_net(net, run_caffe(path, weights, {"data": x}))
        for o, got in zip(net.outputs, sess.run(list(net.outputs), {"data": x})):
            np.testing.assert_allclose(got, want[o], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("body, match", [
    ('layer { name: "r" type: "Reshape" bottom: "data" top: "out" reshape_param { shape { dim: 4 dim: 6 } } }',
     "fix the batch axis"),
    ('layer { name: "r" type: "Reshape" bottom: "data" top: "r" reshape_param { shape { dim: -1 dim: 2 } } }\n'
     'layer { name: "ip" type: "InnerProduct" bottom: "r" top: "out" inner_product_param { num_output: 2 } }',
     "folded into axis 0"),
])
def test_dynamic_batch_refuses_what_it_cannot_express(tmp_path, body, match):
    from caffe2onnx.errors import ShapeError
    net = caffe2onnx.load(write(tmp_path, input_layer((2, 3, 2, 2)) + body), random_weights=0)
    with pytest.raises(ShapeError, match=match):
        build(net, dynamic_batch=True)
