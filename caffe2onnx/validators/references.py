"""The references an ONNX model is checked against, behind one small interface.

* ``caffe``  - real Caffe (pycaffe, CPU) in a subprocess: the judge. Every blob,
  including values that a later in-place layer overwrites.
* ``numpy``  - caffe2onnx's own NumPy re-implementation of Caffe's layers
  (``caffe2onnx.validators.numpy_ref``), for machines without Caffe. Every tensor.
* ``opencv`` - OpenCV's Caffe importer (``cv2.dnn.readNetFromCaffe``), used only when
  ``opencv-python-headless<5`` happens to be installed (not a dependency). Known
  deviations from Caffe, so treat its verdicts with care: it also runs layers that
  Caffe keeps for the TRAIN phase only, it ignores LRN's ``k`` (always 1), and it
  yields only the first top of each layer (the other tops are not compared). On fork layers
  (pinned in tests/test_fork_opencv.py) its Axpy scales bottom 2 instead of bottom 1, its
  Interp ignores pad_beg/pad_end and, given zoom_factor, shrink_factor; it has no BN or
  DepthwiseConvolution and runs ShuffleChannel on 4-D blobs only.
* ``auto``   - caffe when pycaffe is importable, else numpy.
"""
from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Mapping, Protocol

import numpy as np

from ..errors import Caffe2OnnxError
from ..ir import Net

Arrays = dict[str, np.ndarray]


class ReferenceUnavailable(Caffe2OnnxError):
    """The chosen reference cannot run here (not installed, or missing what it needs)."""


class Reference(Protocol):
    name: str

    def run(self, net: Net, prototxt: str | Path | None, caffemodel: str | Path | None,
            inputs: Mapping[str, np.ndarray]) -> Arrays:
        """{tensor name of ``net``: value} for every tensor the reference can produce."""


class CaffeReference:
    """Real Caffe in a subprocess (``caffe_reference.run_caffe``)."""

    name = "caffe"

    def run(self, net, prototxt, caffemodel, inputs) -> Arrays:
        from .caffe_reference import blobs_for_net, run_caffe
        if prototxt is None:
            raise ReferenceUnavailable("the caffe reference needs the deploy .prototxt")
        python = [l.name for l in net.layers if l.type == "Python"]
        if python:  # pycaffe would import the layer's module: a net's code is never run
            raise ReferenceUnavailable(f"layer '{python[0]}' is a Python layer: real Caffe would import and run "
                                       "its module, which caffe2onnx never does; use --reference numpy")
        if caffemodel is not None:
            return blobs_for_net(net, run_caffe(prototxt, caffemodel, inputs))
        if net.parameter_count == 0 and any(l.weight_shapes for l in net.layers):
            raise ReferenceUnavailable("the caffe reference needs weights: give a .caffemodel")
        from ..caffemodel_writer import write_net_weights
        with tempfile.TemporaryDirectory(prefix="caffe2onnx-ref-") as tmp:
            weights = Path(tmp, "weights.caffemodel")  # e.g. a net with seeded random weights
            write_net_weights(weights, net)
            return blobs_for_net(net, run_caffe(prototxt, weights, inputs))


class NumpyReference:
    """caffe2onnx's NumPy forward pass of the loaded net (weights already bound)."""

    name = "numpy"

    def run(self, net, prototxt, caffemodel, inputs) -> Arrays:
        try:
            from .numpy_ref import run_numpy
        except ImportError as e:
            raise ReferenceUnavailable(f"the numpy reference is not available: {e}") from None
        return dict(run_numpy(net, dict(inputs)))


class OpenCVReference:
    """OpenCV's Caffe importer; fusion off so every layer's own output can be read."""

    name = "opencv"

    def run(self, net, prototxt, caffemodel, inputs) -> Arrays:
        cv2 = opencv_module()
        if cv2 is None:
            raise ReferenceUnavailable("the opencv reference needs opencv-python-headless<5 "
                                       "(pip install 'opencv-python-headless<5'); it is optional")
        if prototxt is None or caffemodel is None:
            raise ReferenceUnavailable("the opencv reference needs both the .prototxt and the .caffemodel")
        cvnet = cv2.dnn.readNetFromCaffe(str(prototxt), str(caffemodel))
        cvnet.setPreferableBackend(cv2.dnn.DNN_BACKEND_OPENCV)
        cvnet.setPreferableTarget(cv2.dnn.DNN_TARGET_CPU)
        cvnet.enableFusion(False)
        for name, value in inputs.items():
            cvnet.setInput(np.ascontiguousarray(value, np.float32), name)
        known = set(cvnet.getLayerNames())
        layers = [l for l in net.layers if l.name in known and l.type != "Input" and l.outputs]
        values = cvnet.forward([l.name for l in layers]) if layers else []
        out = {k: np.asarray(v) for k, v in inputs.items()}
        for layer, value in zip(layers, values):
            value = np.asarray(value)
            shape = layer.output_shapes[0]
            out[layer.outputs[0]] = value.reshape(shape) if value.size == int(np.prod(shape)) else value
        return out


def opencv_module():
    """``cv2`` when an OpenCV 4.x with the dnn module is importable, else None."""
    try:
        import cv2
    except ImportError:
        return None
    if not hasattr(cv2, "dnn") or int(cv2.__version__.split(".")[0]) >= 5:
        return None
    return cv2


REFERENCES = {"caffe": CaffeReference, "numpy": NumpyReference, "opencv": OpenCVReference}


def get_reference(choice: str) -> Reference:
    """The reference for ``caffe``, ``numpy``, ``opencv`` or ``auto`` (caffe if importable, else numpy)."""
    if choice == "auto":
        from .caffe_reference import caffe_available
        choice = "caffe" if caffe_available() else "numpy"
    if choice not in REFERENCES:
        raise ReferenceUnavailable(f"unknown reference {choice!r}; choose auto, {', '.join(REFERENCES)}")
    if choice == "caffe":
        from .caffe_reference import caffe_available
        if not caffe_available():
            raise ReferenceUnavailable("real Caffe (pycaffe) is not importable here; install it, or use "
                                       "--reference numpy")
    return REFERENCES[choice]()
