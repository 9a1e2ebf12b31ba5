"""Whole published architectures: seeded random weights, converted, against real Caffe.

Every deploy net of ../shared/corpus/architectures and bvlc_caffe/models whose
layers all convert is run at batch 1 through real Caffe, onnxruntime and the
built-in NumPy reference. For both of ours, every blob must agree with Caffe
within 1e-4 of that blob's magnitude and the output within 1e-5 (times its
magnitude where that exceeds 1). Without real Caffe,
``tests/golden/arch_<name>.npz`` (written by real Caffe via
``python tests/regen_golden.py tests/test_architectures.py``) holds the output
and a digest of the seeded weights and input.
"""
from __future__ import annotations

import numpy as np
import pytest

import caffe2onnx
from caffe2onnx.caffemodel_writer import write_net_weights
from caffe2onnx.validators.caffe_reference import blobs_for_net, run_caffe
from harness import (CORPUS, GOLDEN, REGEN, assert_close, live_caffe, numpy_blobs, onnx_blobs, reshaped_prototxt,
                     seeded_digest)

NETS = {
    "alexnet": ("bvlc_caffe/models/bvlc_alexnet/deploy.prototxt", (1, 3, 227, 227)),
    "caffenet": ("bvlc_caffe/models/bvlc_reference_caffenet/deploy.prototxt", (1, 3, 227, 227)),
    "rcnn_ilsvrc13": ("bvlc_caffe/models/bvlc_reference_rcnn_ilsvrc13/deploy.prototxt", (1, 3, 227, 227)),
    "squeezenet_1.0": ("architectures/squeezenet/SqueezeNet_v1.0/deploy.prototxt", (1, 3, 227, 227)),
    "squeezenet_1.1": ("architectures/squeezenet/SqueezeNet_v1.1/deploy.prototxt", (1, 3, 227, 227)),
    "mobilenet_v1": ("architectures/mobilenet_shicai/mobilenet_deploy.prototxt", (1, 3, 224, 224)),
    "mobilenet_v2": ("architectures/mobilenet_shicai/mobilenet_v2_deploy.prototxt", (1, 3, 224, 224)),
    "resnet18": ("architectures/soeaver_caffe_model/cls/resnet/deploy_resnet18-priv.prototxt", (1, 3, 224, 224)),
    "resnet50": ("architectures/resnet_kaiminghe/ResNet-50-deploy.prototxt", (1, 3, 224, 224)),
    "resnet101": ("architectures/resnet_kaiminghe/ResNet-101-deploy.prototxt", (1, 3, 224, 224)),
    "resnet152": ("architectures/resnet_kaiminghe/ResNet-152-deploy.prototxt", (1, 3, 224, 224)),
    "resnext50": ("architectures/soeaver_caffe_model/cls/resnext/deploy_resnext50-32x4d.prototxt", (1, 3, 224, 224)),
    "inception_v3": ("architectures/soeaver_caffe_model/cls/inception/deploy_inception-v3.prototxt", (1, 3, 299, 299)),
    "inception_resnet_v2": ("architectures/soeaver_caffe_model/cls/inception/deploy_inception-resnet-v2.prototxt", (1, 3, 299, 299)),
    "xception": ("architectures/soeaver_caffe_model/cls/inception/deploy_xception.prototxt", (1, 3, 299, 299)),
    # At 224x224 VGG16's caffemodel passes 512 MB, which real Caffe refuses to read; at 64x64
    # fc6 shrinks and every layer type is still exercised.
    "vgg16": ("architectures/soeaver_caffe_model/cls/vgg/deploy_vgg16-pytorch.prototxt", (1, 3, 64, 64)),
    "vgg16_bn": ("architectures/soeaver_caffe_model/cls/vgg/deploy_vgg16bn-pytorch.prototxt", (1, 3, 64, 64)),
}
# MobileNet-SSD (PriorBox, DetectionOutput) is checked, with detections, in test_detection_ssd_nets.py.


def _inputs(name: str, shape) -> dict[str, np.ndarray]:
    return {name: np.random.default_rng(1).standard_normal(shape).astype(np.float32)}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(NETS))
def test_architecture_matches_real_caffe(tmp_path, name):
    rel, shape = NETS[name]
    path = CORPUS / rel
    if not path.exists():
        pytest.skip(f"shared corpus file {rel} not present")
    input_name = caffe2onnx.load(path).inputs[0]
    net = caffe2onnx.load(path, random_weights=0, input_shapes={input_name: shape})
    golden = GOLDEN / f"arch_{name}.npz"
    if live_caffe():
        model = tmp_path / "w.caffemodel"
        write_net_weights(model, net)
        inputs = _inputs(input_name, shape)
        at_size = reshaped_prototxt(path, tmp_path / "net.prototxt", {input_name: shape})
        want = blobs_for_net(net, run_caffe(at_size, model, inputs))
        if REGEN:
            np.savez_compressed(golden, digest=np.array(seeded_digest(net, inputs)),
                                **{f"out/{k}": want[k] for k in net.outputs})
    elif golden.exists():
        with np.load(golden, allow_pickle=False) as g:
            inputs = _inputs(input_name, shape)
            if str(g["digest"]) != seeded_digest(net, inputs):
                pytest.skip("this numpy generates other seeded weights or inputs than the golden file's")
            want = {k[4:]: g[k] for k in g.files if k.startswith("out/")}
    else:
        pytest.skip(f"real Caffe is not installed and there is no golden file for {name}")
    got = onnx_blobs(net, 17, inputs, all_tensors=len(want) > len(net.outputs))
    diffs = {o: float(np.abs(got[o] - want[o]).max()) for o in net.outputs}
    print(f"{name}: max abs diff of the output " + ", ".join(f"{o} {d:.3g}" for o, d in diffs.items()))
    for o in net.outputs:  # 1e-5 absolute for probabilities, relative to the magnitude beyond 1
        limit = 1e-5 * max(1.0, float(np.abs(want[o]).max()))
        assert_close(got, want, [o], max_abs=limit, mean_abs=limit / 10)
    inner = [t for t in net.tensors if t not in net.outputs]
    assert_close(got, want, inner, max_abs=1e-4, mean_abs=1e-4, relative=True)
    ref = numpy_blobs(net, inputs)  # the built-in NumPy reference must agree with real Caffe too
    for o in net.outputs:
        limit = 1e-5 * max(1.0, float(np.abs(want[o]).max()))
        assert_close(ref, want, [o], max_abs=limit, mean_abs=limit / 10, what="NumPy reference")
    assert_close(ref, want, inner, max_abs=1e-4, mean_abs=1e-4, relative=True, what="NumPy reference")
