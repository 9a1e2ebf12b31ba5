"""Every prototxt of the shared corpus loads in TEST phase (or fails for a layer type that a
later issue adds), and legacy nets load like their modern forms."""
import pytest

import caffe2onnx
from caffe2onnx.errors import UnsupportedLayerError
from harness import CORPUS, corpus

# Layer types whose support arrives with later issues; a net using them must fail naming them.
EXPECTED_FOR_NOW = {"Python"}
# Nets fed by data layers: the input shape comes from the LMDB/HDF5 data, so the test gives it.
DATA_SHAPES = {
    "squeezenet": {"data": (1, 3, 227, 227)},
    "cifar10": {"data": (1, 3, 32, 32)},
    "imagenet_val": {"data": (1, 3, 227, 227)},
    "pascal_finetune": {"data": (1, 3, 227, 227)},
    "hdf5_classification": {"data": (2, 4)},
    "siamese": {"pair_data": (2, 2, 28, 28)},
    "mnist": {"data": (2, 1, 28, 28)},
    "bvlc_alexnet": {"data": (1, 3, 227, 227)},
    "bvlc_reference_caffenet": {"data": (1, 3, 227, 227)},
    "bvlc_googlenet": {"data": (1, 3, 224, 224)},
    "MobileNetSSD": {"data": (1, 3, 300, 300)},
    "reshape_and_slice": {"input": (2, 6, 5, 4)},
}
STAGES = {"mnist_autoencoder": ["test-on-test"]}
PHASES = {"MobileNetSSD_train": "TRAIN"}  # its only data layer is TRAIN-phase
TEMPLATE_FILL = {"cls": 21}  # MobileNetSSD's template has placeholders like `num_output: cls3x`


def _prototxts():
    if not CORPUS.exists():
        return ["<corpus absent>"]
    return sorted(str(p.relative_to(CORPUS)) for p in CORPUS.rglob("*.prototxt"))


def _shapes(rel, is_train_val):
    for key, shapes in DATA_SHAPES.items():
        if key in rel:
            return shapes if is_train_val else None
    return None


@pytest.mark.parametrize("rel", _prototxts())
def test_corpus_prototxt_loads_in_test_phase(rel, tmp_path):
    path = corpus(rel)
    text = path.read_text()
    if "template" in rel:
        import re
        text = re.sub(r"\bcls(\d+)x\b", lambda m: str(int(m.group(1)) * TEMPLATE_FILL["cls"]), text)
        path = tmp_path / "filled.prototxt"
        path.write_text(text)
    uses_data = any(f'type: "{t}"' in text for t in ("Data", "ImageData", "HDF5Data", "WindowData", "AnnotatedData"))
    no_shape = 'input: "' in text and "input_dim" not in text and "input_shape" not in text
    shapes = _shapes(rel, uses_data or no_shape)
    stages = next((s for k, s in STAGES.items() if k in rel), ())
    phase = next((p for k, p in PHASES.items() if k in rel), "TEST")
    try:
        net = caffe2onnx.load(path, input_shapes=shapes, stages=stages, phase=phase)
    except UnsupportedLayerError as e:
        types = {t for _, t, _ in e.problems}
        assert types <= EXPECTED_FOR_NOW, f"unexpected unsupported types {types - EXPECTED_FOR_NOW}: {e}"
        return
    assert net.layers and net.outputs
    for name, tensor in net.tensors.items():
        assert tensor.shape and all(d > 0 for d in tensor.shape), name
    assert not any(l.type in ("Data", "SoftmaxWithLoss", "Accuracy") for l in net.layers)


def test_v1_gtsrb_upgrades():
    net = caffe2onnx.load(corpus("legacy/gtsrb.prototxt"), random_weights=0)
    assert [l.type for l in net.layers][:3] == ["Convolution", "TanH", "Pooling"]
    assert net.shape(net.outputs[0]) == (1, 43)


@pytest.mark.parametrize("name", ["bvlc_googlenet", "bvlc_alexnet"])
def test_input_dim_nets_equal_input_layer_nets(name):
    legacy = caffe2onnx.load(corpus(f"legacy/{name}.prototxt"))
    modern = caffe2onnx.load(corpus(f"bvlc_caffe/models/{name}/deploy.prototxt"))
    summary = lambda n: [(l.name, l.type, l.params, l.inputs, l.outputs, l.output_shapes, l.weight_shapes)  # noqa: E731
                         for l in n.layers]
    assert summary(legacy) == summary(modern)
    assert legacy.inputs == modern.inputs and legacy.outputs == modern.outputs
