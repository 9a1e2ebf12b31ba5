"""``caffe2onnx validate``: layer-by-layer numerical parity of an ONNX model against Caffe."""
from __future__ import annotations

import argparse
import sys

from ..errors import EXIT_ERROR, EXIT_MISMATCH, EXIT_OK
from ..safe_io import check_output_path
from ..validators.tolerances import CPU_ATOL, CPU_RTOL, GPU_ATOL, GPU_RTOL
from .options import add_net_options, add_validate_options, emit, nonneg_int, shapes_of

EXIT_PASS = EXIT_OK

DESCRIPTION = f"""\
Run NET (with WEIGHTS) in a reference and MODEL.onnx in onnxruntime on the same
inputs, compare every Caffe layer's output blob, and name the first layer (in
execution order) whose output diverges, with its type and parameters.

A blob passes if  max|onnx - ref| <= atol  OR  max|onnx - ref| / max|ref| <= rtol.
Defaults: fp32 CPU atol {CPU_ATOL:g}, rtol {CPU_RTOL:g}; CUDA/TensorRT atol {GPU_ATOL:g}, rtol {GPU_RTOL:g}
(TF32 off). Why: both sides compute in fp32 but sum in different orders, so they
agree to rounding (~sqrt(K)*1.2e-7 of a blob's magnitude for a length-K dot product,
~1e-5 for K of a few thousand); rtol relative to the blob's largest magnitude leaves
headroom for that over a deep net, while a real mapping error is off by 1e-2..1.
atol covers blobs that are all near zero, where a relative bound means nothing;
rtol covers large blobs, where one fp32 ulp already exceeds any fixed atol.
GPU kernels (cuDNN algorithm choice) round several times more, hence 10x looser.

The reference runs the net as caffe2onnx read it (same stages and level, only
the converted layers, data layers replaced by inputs), in an isolated process
with a time limit (--timeout), and so does onnxruntime.

Exit status: 0 every blob matches, 1 numerical mismatch, 2 usage or load error
(unreadable files, a reference or execution provider that is not available here,
a run past the time limit).
"""


def add_parser(sub) -> None:
    p = sub.add_parser("validate", help="check an ONNX model against Caffe, layer by layer",
                       description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("net", help="deploy .prototxt")
    p.add_argument("weights", help=".caffemodel the ONNX model was converted from")
    p.add_argument("model", help="the .onnx model to check")
    p.add_argument("--reference", choices=["auto", "caffe", "numpy", "opencv"], default="auto",
                   help="what computes the expected numbers: real Caffe (pycaffe), caffe2onnx's NumPy "
                        "re-implementation, or OpenCV's Caffe importer (optional; deviates from Caffe: "
                        "ignores LRN k). auto: caffe if importable, else numpy")
    p.add_argument("--provider", choices=["auto", "cpu", "cuda", "tensorrt"], default="cpu",
                   help="onnxruntime execution provider (default cpu). An explicit choice never falls back: "
                        "cuda without a CUDA provider exits 2. auto prefers CUDA. The report names the "
                        "provider that ran")
    p.add_argument("--layers", action="store_true", help="show every layer's blob, not only the outputs")
    p.add_argument("--atol", type=float, help=f"absolute tolerance on max abs diff (default {CPU_ATOL:g} on CPU, "
                                              f"{GPU_ATOL:g} on CUDA/TensorRT)")
    p.add_argument("--rtol", type=float, help=f"tolerance on max abs diff / max |reference| (default "
                                              f"{CPU_RTOL:g} on CPU, {GPU_RTOL:g} on CUDA/TensorRT)")
    p.add_argument("--json", metavar="FILE", help="write the full report as JSON")
    p.add_argument("--junit", metavar="FILE", help="write JUnit XML: one testcase per compared blob")
    add_net_options(p)
    add_validate_options(p)
    add_input_args(p)
    p.add_argument("-q", "--quiet", action="store_true", help="print only the verdict line and any first divergence")
    p.set_defaults(run=run, parser=p)


def add_input_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("inputs (default: seeded standard-normal noise)")
    g.add_argument("--input", action="append", default=[], metavar="[NAME=]FILE",
                   help="NAME=file.npy, file.npz (keys name the inputs), or NAME=image.jpg (repeatable); "
                        "arrays load with allow_pickle=False and are used as they are")
    g.add_argument("--seed", type=nonneg_int, default=0, help="seed of the random inputs (default 0)")
    g.add_argument("--mean", metavar="V[,V,V]", help="images: per-channel mean to subtract, in the net's channel "
                                                     "order, e.g. 104,117,123")
    g.add_argument("--mean-file", metavar="FILE", help="images: mean.binaryproto to subtract (centre-cropped)")
    g.add_argument("--scale", type=float, default=1.0, help="images: multiply by this after the mean (default 1)")
    g.add_argument("--channel-order", choices=["bgr", "rgb"], default="bgr",
                   help="images: channel order the net expects (default bgr, as Caffe/OpenCV decode)")


def preprocess_from(args: argparse.Namespace):
    from ..validators.inputs import Preprocess
    mean = None
    if args.mean:
        try:
            mean = tuple(float(v) for v in args.mean.split(","))
        except ValueError:
            args.parser.error(f"--mean {args.mean!r}: expected numbers, e.g. 104,117,123")
    return Preprocess(mean, args.mean_file, args.scale, args.channel_order)


def run(args: argparse.Namespace) -> int:
    from ..validators.check import validate
    from ..validators.report import format_table, write_json, write_junit

    for report in (args.json, args.junit):
        if report:
            check_output_path(report, (args.net, args.weights, args.model), what="report")
    result = validate(args.net, args.weights, args.model, reference=args.reference, provider=args.provider,
                      runtime=args.runtime,
                      atol=args.atol, rtol=args.rtol, input_specs=args.input, seed=args.seed,
                      preprocess=preprocess_from(args), input_shapes=shapes_of(args), stages=args.stage,
                      level=args.level, timeout=args.timeout,
                      phase=args.phase, caffe_proto=args.caffe_proto)
    code = EXIT_PASS if result.passed else EXIT_MISMATCH
    text = format_table(result, layers=args.layers)
    emit("\n".join(text.splitlines()[:1] + [l for l in text.splitlines() if "FIRST DIVERGING" in l])
         if args.quiet else text)
    try:
        if args.json:
            write_json(result, args.json)
        if args.junit:
            write_junit(result, args.junit)
    except OSError as e:
        emit(f"caffe2onnx validate: error: cannot write the report: {e.strerror or e}", file=sys.stderr)
        return EXIT_ERROR
    return code
