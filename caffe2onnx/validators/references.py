"""The references an ONNX model is checked against, behind one small interface.

* ``caffe``  - real Caffe (pycaffe, CPU) in a subprocess: the judge. Every blob,
  including values that a later in-place layer overwrites.
* ``numpy``  - caffe2onnx's own NumPy re-implementation of Caffe's layers
  (``caffe2onnx.validators.numpy_ref``), for machines without Caffe. Every tensor.
* ``opencv`` - OpenCV's Caffe importer (``cv2.dnn.readNetFromCaffe``), used only when
  ``opencv-python-headless<5`` happens to be installed (not a dependency). Known
  deviations from Caffe, so treat its verdicts with care: it ignores LRN's ``k``
  (always 1), and it yields only the first top of each layer (the other tops are
  not compared).

Real Caffe and OpenCV run the prototxt caffe2onnx writes from the loaded Net
(only the converted layers, no rules, data layers replaced by Input) with the
weights bound to it: never the user's files.
  On fork layers (pinned in tests/test_fork_opencv.py) its Axpy scales bottom 2 instead
  of bottom 1, its Interp ignores pad_beg/pad_end and, given zoom_factor, shrink_factor;
  it has no BN or DepthwiseConvolution and runs ShuffleChannel on 4-D blobs only.
* ``auto``   - caffe when pycaffe is importable and can judge every layer of the net
  (``caffe_reference.caffe_cannot_judge``: not a layer it lacks or computes otherwise,
  such as fork layers and plugins), else numpy.
"""
from __future__ import annotations

import signal
import tempfile
import threading
from contextlib import contextmanager
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
            inputs: Mapping[str, np.ndarray], timeout: float | None = None) -> Arrays:
        """{tensor name of ``net``: value} for every tensor the reference can produce.

        Real Caffe and OpenCV get the prototxt written from ``net`` (``Net.reference_prototxt``)
        and the weights bound to ``net``, never the user's files, so only the layers that were
        converted can run.
        """


def refuse_python_layers(net: Net) -> None:
    """pycaffe (and OpenCV) would import a Python layer's module: a net's code is never run."""
    python = [l.name for l in net.layers if l.type == "Python"]
    if python:
        raise ReferenceUnavailable(f"layer '{python[0]}' is a Python layer: real Caffe would import and run "
                                   "its module, which caffe2onnx never does; use --reference numpy")


def write_reference_files(net: Net, tmp: str | Path) -> tuple[Path, Path]:
    """The net's own filtered prototxt and its bound weights, written into ``tmp``."""
    from ..caffemodel_writer import write_net_weights
    if not net.reference_net:
        raise ReferenceUnavailable("this Net carries no reference net (it was not built by caffe2onnx.load)")
    if net.parameter_count == 0 and any(l.weight_shapes for l in net.layers):
        raise ReferenceUnavailable("the reference needs weights: give a .caffemodel or random weights")
    refuse_python_layers(net)
    prototxt, weights = Path(tmp, "net.prototxt"), Path(tmp, "weights.caffemodel")
    prototxt.write_text(net.reference_prototxt())
    write_net_weights(weights, net)
    return prototxt, weights


class CaffeReference:
    """Real Caffe in a subprocess (``caffe_reference.run_caffe``)."""

    name = "caffe"

    def run(self, net, prototxt, caffemodel, inputs, timeout=None) -> Arrays:
        from .caffe_reference import blobs_for_net, run_caffe
        from .caffe_reference import caffe_cannot_judge
        from .isolation import DEFAULT_TIMEOUT
        refuse_python_layers(net)
        why = caffe_cannot_judge(net)
        if why:
            raise ReferenceUnavailable(f"real Caffe cannot judge this net: {why}; use --reference numpy")
        with tempfile.TemporaryDirectory(prefix="caffe2onnx-ref-") as tmp:
            ref_prototxt, weights = write_reference_files(net, tmp)
            users = [Path(p).resolve().parent for p in (prototxt, caffemodel) if p is not None]
            return blobs_for_net(net, run_caffe(ref_prototxt, weights, inputs, untrusted_dirs=users,
                                                timeout=DEFAULT_TIMEOUT if timeout is None else timeout))


class NumpyReference:
    """caffe2onnx's NumPy forward pass of the loaded net (weights already bound)."""

    name = "numpy"

    def run(self, net, prototxt, caffemodel, inputs, timeout=None) -> Arrays:
        try:
            from .numpy_ref import run_numpy
        except ImportError as e:
            raise ReferenceUnavailable(f"the numpy reference is not available: {e}") from None
        with time_limit(timeout, "the numpy reference"):
            return dict(run_numpy(net, dict(inputs)))


class OpenCVReference:
    """OpenCV's Caffe importer; fusion off so every layer's own output can be read."""

    name = "opencv"

    def run(self, net, prototxt, caffemodel, inputs, timeout=None) -> Arrays:
        cv2 = opencv_module()
        if cv2 is None:
            raise ReferenceUnavailable("the opencv reference needs opencv-python-headless<5 "
                                       "(pip install 'opencv-python-headless<5'); it is optional")
        with tempfile.TemporaryDirectory(prefix="caffe2onnx-cv-") as tmp, time_limit(timeout, "the opencv reference"):
            ref_prototxt, weights = write_reference_files(net, tmp)
            return self._run(cv2, net, ref_prototxt, weights, inputs)

    @staticmethod
    def _run(cv2, net, prototxt, caffemodel, inputs) -> Arrays:
        try:
            cvnet = cv2.dnn.readNetFromCaffe(str(prototxt), str(caffemodel))
        except cv2.error as e:
            raise ReferenceUnavailable(f"OpenCV cannot import the net: {str(e).strip().splitlines()[-1]}") from None
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


@contextmanager
def time_limit(seconds: float | None, what: str):
    """Stops in-process work (the numpy and opencv references) after ``seconds`` (main thread only)."""
    from .isolation import DEFAULT_TIMEOUT, WorkerTimeout
    seconds = DEFAULT_TIMEOUT if seconds is None else seconds
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "setitimer"):
        yield
        return

    def expired(signum, frame):
        raise WorkerTimeout(f"{what} ran longer than the time limit of {seconds:g} s and was stopped "
                            "(raise it with --timeout)")
    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


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


def get_reference(choice: str, net: Net | None = None) -> Reference:
    """The reference for ``caffe``, ``numpy``, ``opencv`` or ``auto`` (caffe if importable and able
    to judge ``net``, else numpy)."""
    if choice == "auto":
        from .caffe_reference import caffe_available, caffe_cannot_judge
        judge = caffe_available() and (net is None or caffe_cannot_judge(net) is None)
        choice = "caffe" if judge else "numpy"
    if choice not in REFERENCES:
        raise ReferenceUnavailable(f"unknown reference {choice!r}; choose auto, {', '.join(REFERENCES)}")
    if choice == "caffe":
        from .caffe_reference import caffe_available
        if not caffe_available():
            raise ReferenceUnavailable("real Caffe (pycaffe) is not importable here; install it, or use "
                                       "--reference numpy")
    return REFERENCES[choice]()
