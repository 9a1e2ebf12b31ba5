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
    """Options of every parity check: ``validate`` and ``convert --validate`` get them from here only.

    An option the subcommand already defines (e.g. a convert flag of the same name) is left to it.
    """
    from ..validators.tolerances import CPU_ATOL, CPU_RTOL, GPU_ATOL, GPU_RTOL
    g = p.add_argument_group("parity check (validate, convert --validate)")
    add = _adder(p, g)
    add("--reference", choices=["auto", "caffe", "numpy", "opencv"], default="auto",
        help="what computes the expected numbers: real Caffe (pycaffe), caffe2onnx's NumPy "
             "re-implementation, or OpenCV's Caffe importer (optional; deviates from Caffe: "
             "ignores LRN k). auto: caffe if importable, else numpy")
    add("--provider", choices=["auto", "cpu", "cuda", "tensorrt"], default="cpu",
        help="onnxruntime execution provider (default cpu). An explicit choice never falls back: "
             "cuda without a CUDA provider exits 2. auto prefers CUDA. The report names the provider that ran")
    add("--layers", action="store_true", help="show every layer's blob, not only the outputs")
    add("--atol", type=float, help=f"absolute tolerance on max abs diff (default {CPU_ATOL:g} on CPU, "
                                   f"{GPU_ATOL:g} on CUDA/TensorRT)")
    add("--rtol", type=float, help=f"tolerance on max abs diff / max |reference| (default "
                                   f"{CPU_RTOL:g} on CPU, {GPU_RTOL:g} on CUDA/TensorRT)")
    add("--json", metavar="FILE", help="write the full report as JSON")
    add("--junit", metavar="FILE", help="write JUnit XML: one testcase per compared blob")
    add("--batch", type=positive_int, default=None, metavar="N",
        help="batch size of the check (default 1) for inputs whose batch is symbolic in the model "
             "(validate) or that the net allows to change (convert --validate)")
    add("--timeout", type=positive_float, default=DEFAULT_TIMEOUT, metavar="SECONDS",
        help=f"time limit of the reference run and of the ONNX run (any --runtime), each (default "
             f"{DEFAULT_TIMEOUT:g}); a run past it is killed and the exit code is 2")
    add("--runtime", choices=["onnxruntime", "openvino", "reference"], default="onnxruntime",
        help="what runs the ONNX model (default onnxruntime): openvino (CPU, f32; pip install "
             "'caffe2onnx[openvino]') or reference (onnx's NumPy ReferenceEvaluator: slow on big nets)")
    i = p.add_argument_group("inputs of the check (default: seeded standard-normal noise)")
    add = _adder(p, i)
    add("--input", action="append", default=[], metavar="[NAME=]FILE",
        help="NAME=file.npy, file.npz (keys name the inputs), or NAME=image.jpg (repeatable); "
             "arrays load with allow_pickle=False and are used as they are")
    add("--seed", type=nonneg_int, default=0, help="seed of the random inputs (default 0)")
    add("--mean", metavar="V[,V,V]", help="images: per-channel mean to subtract, in the net's channel "
                                          "order, e.g. 104,117,123")
    add("--mean-file", metavar="FILE", help="images: mean.binaryproto to subtract (centre-cropped)")
    add("--scale", type=float, default=1.0, help="images: multiply by this after the mean (default 1)")
    add("--channel-order", choices=["bgr", "rgb"], default="bgr",
        help="images: channel order the net expects (default bgr, as Caffe/OpenCV decode)")


def _adder(p: argparse.ArgumentParser, group):
    """group.add_argument, skipping flags the parser already has (a subcommand's own meaning wins)."""
    def add(flag: str, **kw) -> None:
        if flag not in p._option_string_actions:  # argparse would raise on the clash
            group.add_argument(flag, **kw)
    return add


def positive_int(text: str) -> int:
    value = nonneg_int(text)
    if value == 0:
        raise argparse.ArgumentTypeError("expected a whole number >= 1, not 0")
    return value


def preprocess_from(args: argparse.Namespace):
    """The image preprocessing of the check's --input images."""
    from ..validators.inputs import Preprocess
    mean = getattr(args, "mean", None)
    if isinstance(mean, str):
        try:
            mean = tuple(float(v) for v in mean.split(","))
        except ValueError:
            args.parser.error(f"--mean {args.mean!r}: expected numbers, e.g. 104,117,123")
    return Preprocess(mean, getattr(args, "mean_file", None), getattr(args, "scale", 1.0),
                      getattr(args, "channel_order", "bgr"))


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


def is_binary(path: str) -> bool:
    """A caffemodel given where a prototxt goes (convert and validate read it alone)."""
    from ..safe_io import MAX_CAFFEMODEL_BYTES, check_input_file
    check_input_file(path, "net", MAX_CAFFEMODEL_BYTES)  # never open a FIFO or a device
    if path.endswith(".caffemodel"):
        return True
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    with os.fdopen(fd, "rb") as f:
        head = f.read(4096)
    # Protobuf's binary form is full of control bytes (tags, lengths); a text prototxt with a
    # stray NUL is not, and is read as text so that the error names the NUL byte.
    control = sum(1 for b in head if b < 0x20 and b not in b"\t\n\r")
    return b"\0" in head and control > max(2, len(head) // 100)


def cut_net(net, args: argparse.Namespace):
    """The loaded Net, stopped before DetectionOutput with --no-detection-output."""
    if not args.no_detection_output:
        return net
    from ..rewrites import without_detection_output
    return without_detection_output(net)


def check_report_paths(args: argparse.Namespace, inputs) -> None:
    """--json/--junit are never an input or the model: checked before anything runs."""
    from ..safe_io import check_output_path
    for report in (args.json, args.junit):
        if report:
            check_output_path(report, inputs, what="report")


def write_reports(result, args: argparse.Namespace, prog: str) -> bool:
    """Writes the --json/--junit reports; False (after one error line) if one cannot be written."""
    from ..validators.report import write_json, write_junit
    try:
        if args.json:
            write_json(result, args.json)
        if args.junit:
            write_junit(result, args.junit)
    except OSError as e:
        emit(f"{prog}: error: cannot write the report: {e.strerror or e}", file=sys.stderr)
        return False
    return True
