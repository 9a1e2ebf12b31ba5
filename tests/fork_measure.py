"""Prints, per fork layer, the max abs / relative difference of each reference against the ONNX model.

    OPENBLAS_NUM_THREADS=1 python tests/fork_measure.py

References: real Caffe running the layer's exact BVLC form (where one exists; needs pycaffe),
the NumPy reference, OpenCV dnn (where it has the layer) and OpenVINO (f32). ONNX runs in
onnxruntime at opset 11 and the newest; the worst of the two is shown (the OpenVINO row is OpenVINO's
output at those opsets against the NumPy reference). Relative = max abs
divided by the reference's largest magnitude.
"""
from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))

from caffe2onnx.converter import build_model, max_opset  # noqa: E402
from caffe2onnx.validators.caffe_reference import caffe_available  # noqa: E402
from caffe2onnx.validators.references import OpenCVReference, opencv_module  # noqa: E402
from harness import onnx_blobs, reference  # noqa: E402
from test_fork_caffe import CASES as CAFFE_CASES  # noqa: E402
from test_fork_layers import F, ROIS, SEEDED, check_fork, inputs_text, layer  # noqa: E402

OPSETS = sorted({11, max_opset()})
ROI = {
    "ROIPooling": (4, layer("ROIPooling", "roi_pooling_param { pooled_h: 3 pooled_w: 2 spatial_scale: 0.5 }",
                            ("feat", "rois"))),
    "PSROIPooling": (12, layer("PSROIPooling", "psroi_pooling_param { spatial_scale: 0.5 output_dim: 3 "
                               "group_size: 2 }", ("feat", "rois"))),
}
OPENCV = {"ShuffleChannel", "ConvolutionDepthwise", "Interp", "ROIPooling", "PSROIPooling", "Axpy"}
CAFFE_TYPE = {"convdw": "ConvolutionDepthwise", "dwconv": "DepthwiseConvolution", "shuffle": "ShuffleChannel",
              "axpy": "Axpy", "bn_pspnet": "BN", "bn_segnet_inference": "BN", "bn_segnet_learn": "BN"}


def diff(a, b) -> tuple[float, float]:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.shape != b.shape:
        return float("nan"), float("nan")
    m = float(np.abs(a - b).max())
    return m, m / max(float(np.abs(b).max()), 1e-30)


def worst(rows, key, value):
    old = rows.setdefault(key, (0.0, 0.0))
    rows[key] = (max(old[0], value[0]), max(old[1], value[1]))


def main() -> None:
    rows: dict[tuple[str, str], tuple[float, float]] = {}
    cases = [(case, shapes, text, None) for case, (shapes, text) in SEEDED.items()]
    for t, (c, text) in ROI.items():
        feat = np.random.default_rng(3).standard_normal((2, c, 6, 9)).astype(F)
        cases.append((t, dict(feat=feat.shape, rois=ROIS.shape), text, {"feat": feat, "rois": ROIS}))
    for case, shapes, text, inputs in cases:
        with tempfile.TemporaryDirectory() as tmp:
            weights = None
            if case.startswith("bn_pspnet"):
                c = shapes["data"][1]
                weights = {"l": [np.ones((1, c, 1, 1)) * 1.3, np.full((1, c, 1, 1), .2), np.full((1, c, 1, 1), .1),
                                 np.full((1, c, 1, 1), 2.0)]}
            path, model, net, inputs, ref = check_fork(Path(tmp), inputs_text(**shapes) + text, inputs, weights,
                                                       opsets=())
            kind = net.layers[-1].type
            out = net.outputs[0]
            for opset in OPSETS:
                worst(rows, (kind, "NumPy reference"), diff(onnx_blobs(net, opset, inputs)[out], ref[out]))
            known_diff = kind == "Interp" and ("pad_" in text or "shrink" in text)  # see test_fork_opencv.py
            if kind in OPENCV and opencv_module() is not None and not known_diff:
                try:
                    cv = OpenCVReference().run(net, path, model, inputs)
                    worst(rows, (kind, "OpenCV dnn"), diff(onnx_blobs(net, OPSETS[-1], inputs)[out], cv[out]))
                except Exception as e:  # noqa: BLE001  (OpenCV's own limits, reported)
                    print(f"OpenCV cannot run case {case}: {str(e).splitlines()[0][:120]}")
            try:
                from test_fork_openvino import run_openvino
                for opset in OPSETS:
                    worst(rows, (kind, "OpenVINO f32"), diff(run_openvino(build_model(net, opset=opset), inputs)[out],
                                                             ref[out]))
            except ImportError:
                pass
    if caffe_available():
        from test_fork_layers import fork_net
        for case, (shapes, bvlc, fork, to_fork) in CAFFE_CASES.items():
            with tempfile.TemporaryDirectory() as tmp:
                (Path(tmp) / "b").mkdir()
                (Path(tmp) / "f").mkdir()
                _, _, ref = reference(Path(tmp) / "b", f"fork_{case}", inputs_text(**shapes) + bvlc, {})
                _, _, net = fork_net(Path(tmp) / "f", inputs_text(**shapes) + fork, to_fork(ref.weights))
                for opset in OPSETS:
                    worst(rows, (CAFFE_TYPE[case], "real Caffe (BVLC form)"),
                          diff(onnx_blobs(net, opset, ref.inputs)["out"], ref.blobs["out"]))
    print(f"{'layer':<22} {'reference':<24} {'max abs':>10} {'max rel':>10}")
    for (kind, ref_name), (m, r) in sorted(rows.items()):
        print(f"{kind:<22} {ref_name:<24} {m:>10.3g} {r:>10.3g}")


def nets() -> None:
    """The whole fork nets of test_fork_nets.py: worst blob over every tensor, per opset."""
    import caffe2onnx
    import fork_nets
    from caffe2onnx.validators.numpy_ref import run_numpy
    from test_fork_layers import fork_net
    from test_fork_nets import ROIS, _pspnet_weights

    def worst_blob(got, want, names):
        return max((diff(got[n], want[n]) for n in names), key=lambda d: d[1])

    for name in ("shufflenet", "mobilenet_v2") if caffe_available() else ():
        with tempfile.TemporaryDirectory() as tmp:
            d = Path(tmp)
            (d / "b").mkdir()
            (d / "f").mkdir()
            build = getattr(fork_nets, name)
            _, _, ref = reference(d / "b", f"fork_net_{name}", build(bvlc=True), {})
            _, _, net = fork_net(d / "f", build(), ref.weights)
            common = [t for t in net.tensors if t in ref.blobs]
            for opset in OPSETS:
                m, r = worst_blob(onnx_blobs(net, opset, ref.inputs), ref.blobs, common)
                print(f"{name:<13} opset {opset:<3} real Caffe (BVLC form), {len(common)} blobs: {m:.3g} / {r:.3g}")
    for name, text, extra in (("pspnet", fork_nets.pspnet(), {}), ("faster_rcnn", fork_nets.faster_rcnn(6), {"rois": ROIS}),
                              ("rfcn", fork_nets.rfcn(6), {"rois": ROIS})):
        with tempfile.TemporaryDirectory() as tmp:
            d = Path(tmp)
            (d / "s.prototxt").write_text(text)
            _, _, net = fork_net(d, text, _pspnet_weights(caffe2onnx.load(d / "s.prototxt", random_weights=0)))
            inputs = {"data": np.random.default_rng(1).standard_normal(net.shape("data")).astype(F), **extra}
            ref = run_numpy(net, inputs)
            for opset in OPSETS:
                m, r = worst_blob(onnx_blobs(net, opset, inputs), ref, net.tensors)
                print(f"{name:<13} opset {opset:<3} NumPy reference, {len(net.tensors)} blobs: {m:.3g} / {r:.3g}")


if __name__ == "__main__":
    main()
    print("\nwhole nets (max abs / max rel):")
    nets()
