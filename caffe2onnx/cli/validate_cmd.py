"""``caffe2onnx validate``: layer-by-layer numerical parity of an ONNX model against Caffe."""
from __future__ import annotations

import argparse

from ..errors import EXIT_ERROR, EXIT_MISMATCH, EXIT_OK
from ..validators.tolerances import CPU_ATOL, CPU_RTOL, GPU_ATOL, GPU_RTOL
from .options import (add_net_options, add_validate_options, check_report_paths, emit, is_binary, nonneg_int,
                      preprocess_from, shapes_of, write_reports)

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
                       description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter,
                       usage="%(prog)s [options] NET (WEIGHTS | --random-weights SEED) MODEL")
    p.add_argument("net", help="deploy .prototxt (or a .caffemodel alone: then give no WEIGHTS)")
    p.add_argument("weights", nargs="?", help=".caffemodel the ONNX model was converted from "
                                              "(omit it with --random-weights)")
    p.add_argument("model", help="the .onnx model to check")
    p.add_argument("--random-weights", type=nonneg_int, metavar="SEED",
                   help="the seeded random weights of 'convert --random-weights SEED' (the same seed "
                        "gives the same weights)")
    add_net_options(p)
    add_validate_options(p)
    p.add_argument("-q", "--quiet", action="store_true", help="print only the verdict line and any first divergence")
    p.set_defaults(run=run, parser=p)


def run(args: argparse.Namespace) -> int:
    from ..validators.check import validate
    from ..validators.report import format_table

    prototxt, caffemodel = args.net, args.weights
    if caffemodel is None and args.random_weights is None and is_binary(args.net):
        prototxt, caffemodel = None, args.net  # a caffemodel alone: its embedded net and weights
    if caffemodel is None and args.random_weights is None:
        args.parser.error("give NET WEIGHTS.caffemodel MODEL.onnx, or NET MODEL.onnx --random-weights SEED"
                          + _recorded_seed(args.model))
    if args.weights is not None and args.random_weights is not None:
        args.parser.error("give WEIGHTS.caffemodel or --random-weights SEED, not both")
    check_report_paths(args, (args.net, args.weights, args.model))
    result = validate(prototxt, caffemodel, args.model, reference=args.reference, provider=args.provider,
                      runtime=args.runtime,
                      atol=args.atol, rtol=args.rtol, input_specs=args.input, seed=args.seed,
                      preprocess=preprocess_from(args), input_shapes=shapes_of(args), stages=args.stage,
                      level=args.level, timeout=args.timeout, random_weights=args.random_weights, batch=args.batch,
                      phase=args.phase, caffe_proto=args.caffe_proto)
    code = EXIT_PASS if result.passed else EXIT_MISMATCH
    text = format_table(result, layers=args.layers)
    emit("\n".join(text.splitlines()[:1] + [l for l in text.splitlines() if "FIRST DIVERGING" in l])
         if args.quiet else text)
    return code if write_reports(result, args, "caffe2onnx validate") else EXIT_ERROR


def _recorded_seed(model: str) -> str:
    """' (MODEL records seed S)' when the model was converted with --random-weights."""
    from ..model_info import read_info
    seed = read_info(model).get("random_weights_seed")
    return f" ({model} was converted with --random-weights {seed})" if seed is not None else ""
