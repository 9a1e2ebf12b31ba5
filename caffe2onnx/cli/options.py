"""Command-line options shared by ``convert`` and ``validate``, and safe printing."""
from __future__ import annotations

import argparse
import os
import sys

from ..validators.isolation import DEFAULT_TIMEOUT


def nonneg_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 0, not {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 0, not {value}")
    return value


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, not {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive, finite number of seconds, not {text}")
    return value


def input_shape(text: str) -> tuple[str, tuple[int, ...]]:
    """``NAME=D0,D1,...`` (or ``NAME=D0xD1x...``) as (name, shape)."""
    name, sep, dims = text.rpartition("=")
    try:
        shape = tuple(int(d) for d in dims.replace("x", ",").split(",") if d.strip())
    except ValueError:
        shape = ()
    if not sep or not name or not shape:
        raise argparse.ArgumentTypeError(f"{text!r}: expected NAME=D0,D1,... e.g. data=1,3,224,224")
    return name, shape


def add_net_options(p: argparse.ArgumentParser) -> None:
    """How the net is read: input shapes and the NetState (stages, level) its rules see."""
    p.add_argument("--input-shape", action="append", default=[], type=input_shape, metavar="NAME=D0,D1,...",
                   help="override or supply an input shape, e.g. data=1,3,224,224 (repeatable)")
    p.add_argument("--stage", action="append", default=[], help="NetState stage for include/exclude rules")
    p.add_argument("--level", type=int, default=0, help="NetState level for include/exclude rules")
    p.add_argument("--phase", type=str.upper, choices=["TRAIN", "TEST"], default=None,
                   help="Caffe phase whose layers are converted (default TEST; for a caffemodel alone, the "
                        "phase its net was saved in)")
    p.add_argument("--caffe-proto", metavar="FILE", help="read the net with this caffe.proto (a fork's schema, "
                   "compiled at run time; or a protoc descriptor set .pb); its extra layer types need a plugin. "
                   "The auto reference is then numpy, since pycaffe reads only its own schema")


def add_validate_options(p: argparse.ArgumentParser) -> None:
    """Options of every parity check (``validate`` and ``convert --validate``)."""
    p.add_argument("--timeout", type=positive_float, default=DEFAULT_TIMEOUT, metavar="SECONDS",
                   help=f"time limit of the reference run and of the ONNX run (any --runtime), each (default "
                        f"{DEFAULT_TIMEOUT:g}); a run past it is killed and the exit code is 2")
    p.add_argument("--runtime", choices=["onnxruntime", "openvino", "reference"], default="onnxruntime",
                   help="what runs the ONNX model (default onnxruntime): openvino (CPU, f32; pip install "
                        "'caffe2onnx[openvino]') or reference (onnx's NumPy ReferenceEvaluator: slow on big nets)")


def shapes_of(args: argparse.Namespace) -> dict[str, tuple[int, ...]]:
    return dict(args.input_shape)


def emit(text: str = "", file=None) -> None:
    """print() that treats a closed stdout (``| head``) as the reader having seen enough."""
    file = sys.stdout if file is None else file
    try:
        print(text, file=file, flush=True)
    except BrokenPipeError:
        silence_stdout()


def silence_stdout() -> None:
    """Points stdout at /dev/null so the interpreter's final flush cannot fail either."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass


def add_deploy_options(p: argparse.ArgumentParser) -> None:
    """``convert``: Caffe's input preprocessing baked into the graph (see rewrites/preprocess.py)."""
    g = p.add_argument_group("deployable model: the input takes the raw image, the graph preprocesses it")
    g.add_argument("--mean", type=_means, metavar="M[,M,M]",
                   help="subtract this mean, in the net's channel order (BGR for most Caffe models)")
    g.add_argument("--scale", type=float, default=1.0, help="then multiply by this (Caffe's transform_param scale)")
    g.add_argument("--input-order", choices=["bgr", "rgb"], default="bgr",
                   help="channel order of the model input; rgb is flipped to the net's BGR")
    g.add_argument("--input-layout", choices=["nchw", "nhwc"], default="nchw", help="layout of the model input")
    g.add_argument("--input-dtype", choices=["float32", "uint8"], default="float32", help="type of the model input")
    g.add_argument("--fp16", action="store_true", help="float16 weights and compute, float32 inputs/outputs "
                   "(needs onnxconverter-common: the [fp16] extra); --validate uses the fp16 tolerances")
    g.add_argument("--fp16-io", action="store_true", help="with --fp16: float16 inputs and outputs too")


def _means(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected numbers separated by commas, e.g. 104,117,123, not {text!r}") \
            from None


def preprocess_of(args: argparse.Namespace):
    """The InputPreprocess the deploy options ask for (None if they ask for nothing)."""
    from ..rewrites.preprocess import InputPreprocess
    spec = InputPreprocess(args.mean, args.scale, args.input_order, args.input_layout, args.input_dtype)
    return None if spec.is_identity else spec
