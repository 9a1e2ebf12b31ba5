"""``caffe2onnx convert``: Caffe net (+ weights) to a checked ONNX file."""
from __future__ import annotations

import argparse
import sys
import time

from ..errors import EXIT_OK
from ..safe_io import MAX_CAFFEMODEL_BYTES, check_input_file, check_output_path
from .options import (add_deploy_options, add_net_options, add_validate_options, cut_net, emit, is_binary, nonneg_int,
                      preprocess_of, shapes_of)

_BIG_MODEL_BYTES = 100 << 20  # show progress for models above this size, on a terminal


def add_parser(sub) -> None:
    p = sub.add_parser(
        "convert", help="convert a Caffe model to ONNX",
        description="Convert NET.prototxt (+ WEIGHTS.caffemodel, or a caffemodel alone) to ONNX. "
                    "The model is checked (onnx checker, strict shape inference, onnxruntime load) "
                    "before it is written, to a temporary file renamed into place; on any error nothing "
                    "is written. Exit status: 0 written, 1 the built model fails its checks (or --validate "
                    "finds a mismatch), 2 usage or input error (unreadable or unsupported net, bad paths).")
    p.add_argument("net", help="deploy .prototxt (or a .caffemodel alone, using its embedded net)")
    p.add_argument("weights", nargs="?", help=".caffemodel with trained weights (bound by layer name)")
    p.add_argument("-o", "--output", required=True,
                   help="ONNX file to write (never an input, never a device, FIFO or directory)")
    p.add_argument("--opset", type=int, default=None, help="ONNX opset (default 17; 11 up to the newest "
                                                          "the installed onnx knows)")
    add_net_options(p)
    p.add_argument("--dynamic-batch", action="store_true", help="make the batch dimension symbolic")
    p.add_argument("--no-detection-output", action="store_true", help="stop before DetectionOutput (SSD): "
                   "its locations, confidences and priors become the graph outputs")
    p.add_argument("--random-weights", type=nonneg_int, metavar="SEED",
                   help="fill seeded random weights (structure-only use and testing)")
    p.add_argument("-q", "--quiet", action="store_true", help="print nothing on success")
    p.add_argument("--fold", action="store_true", help="fold BatchNorm/Scale/Bias into the preceding "
                   "Convolution/InnerProduct weights (their own tops then leave the model)")
    p.add_argument("--external-data", action="store_true", help="write the weights to OUTPUT.data (ONNX "
                   "external data); chosen automatically above protobuf's 2 GiB limit for one file")
    p.add_argument("--validate", action="store_true",
                   help="after writing, compare every layer's output with --reference on seeded random "
                        "inputs, at batch 1 unless --batch says otherwise (see 'caffe2onnx validate'; every "
                        "option of the check below applies); exit 1 on a numerical mismatch (the file is kept "
                        "for inspection), 2 if the check cannot run")
    p.add_argument("--validate-reference", dest="reference", choices=["auto", "caffe", "numpy", "opencv"],
                   help="deprecated alias of --reference")
    add_deploy_options(p)  # first: its --mean/--scale (baked) are convert's; the check's group skips them
    add_validate_options(p)
    p.set_defaults(run=run, parser=p)


class _Progress:
    def __init__(self, enabled: bool):
        self.enabled = enabled
        self.t0 = self.last = self.shown = time.perf_counter()

    def step(self, what: str) -> None:
        if self.enabled:
            now = time.perf_counter()
            print(f"\r  {what:<34} {now - self.last:6.2f} s{' ' * 20}", file=sys.stderr, flush=True)
            self.last = now

    def bytes(self, done: int, total: int) -> None:
        """Weight bytes written so far, with the time left at the rate so far."""
        now = time.perf_counter()
        if self.enabled and total and (now - self.shown >= 0.1 or done == total):
            self.shown, spent = now, now - self.last
            eta = spent * (total - done) / done if done else 0.0
            print(f"\r  writing weights {done / 2**20:8.0f} / {total / 2**20:.0f} MB, ETA {eta:5.1f} s",
                  end="", file=sys.stderr, flush=True)


def run(args: argparse.Namespace) -> int:
    from ..digest import SourceDigests

    prototxt, caffemodel = args.net, args.weights
    if caffemodel is not None and args.random_weights is not None:
        args.parser.error("give WEIGHTS.caffemodel or --random-weights SEED, not both")
    args.error_note = f" (nothing written to {args.output})"
    check_output_path(args.output, (args.net, args.weights))  # before reading anything
    if caffemodel is None and is_binary(prototxt):
        prototxt, caffemodel = None, args.net
    size = check_input_file(caffemodel, "caffemodel", MAX_CAFFEMODEL_BYTES).st_size if caffemodel else 0
    progress = _Progress(not args.quiet and size >= _BIG_MODEL_BYTES and sys.stderr.isatty())
    with SourceDigests(prototxt, caffemodel) as digests:  # hashing starts now, beside the imports and the copy
        net, built = _convert(args, prototxt, caffemodel, digests, progress)
    args.error_note = ""
    if not args.quiet:
        _summary(net, built, args, time.perf_counter() - progress.t0)
    if args.validate:
        from .validation import validate_converted
        return validate_converted(args, net, prototxt, caffemodel, _build)
    return EXIT_OK


def _convert(args: argparse.Namespace, prototxt, caffemodel, digests, progress: _Progress):
    """Reads, builds, checks and writes the model; returns the Net and the BuiltModel."""
    from ..model_info import stamp_after_weights
    from ..parser import load
    net = load(prototxt, caffemodel, input_shapes=shapes_of(args), random_weights=args.random_weights,
               stages=args.stage, level=args.level, phase=args.phase, caffe_proto=args.caffe_proto)
    progress.step("read net and weights")
    net = cut_net(net, args)  # the summary and --validate see the net the model computes
    built = _build(net, args)
    progress.step("mapped layers to ONNX")
    stamp_after_weights(built, net, digests, prototxt=prototxt, caffemodel=caffemodel, stages=args.stage,
                        phase=args.phase or ("TEST" if prototxt else None), level=args.level,
                        random_weights=args.random_weights)
    external = args.external_data or built.needs_external_data()
    if external and not args.external_data and not args.quiet:
        emit(f"caffe2onnx: the model is {built.byte_size() / 2**30:.2f} GiB, over protobuf's 2 GiB limit for "
             f"one file: its weights go to {args.output}.data (ONNX external data)", file=sys.stderr)
    built.save_checked(args.output, external_data=external, progress=progress.bytes if progress.enabled else None)
    progress.step(f"checked (onnx + onnxruntime), wrote {args.output}")
    return net, built


def _build(net, args: argparse.Namespace):
    """The conversion of a loaded Net as the flags ask (also rebuilt at batch 1 by --validate)."""
    from ..converter import DEFAULT_OPSET, build
    return build(net, opset=args.opset or DEFAULT_OPSET, dynamic_batch=args.dynamic_batch, fold=args.fold,
                 preprocess=preprocess_of(args), fp16=args.fp16, fp16_io=args.fp16_io)


def _summary(net, built, args, seconds: float) -> None:
    from collections import Counter

    types = Counter(l.type for l in net.layers)
    top = ", ".join(f"{t} {n}" for t, n in types.most_common(6))
    more = f", +{len(types) - 6} more types" if len(types) > 6 else ""
    shape = lambda n: "x".join(str(d) for d in net.shape(n))  # noqa: E731
    batch = " (batch symbolic: N)" if args.dynamic_batch else ""
    model, (mapped, kept) = built.model, built.node_counts or (len(built.model.graph.node),) * 2
    emit("\n".join([
        f"caffe2onnx: {args.net} -> {args.output}",
        f"  Caffe layers   {len(net.layers)} ({top}{more})",
        f"  ONNX nodes     {kept} at opset {model.opset_import[0].version} ({mapped} as mapped, before "
        f"the graph rewrites{', with --fold' if args.fold else ''})",
        f"  parameters     {net.parameter_count:,}",
        "  inputs         " + ", ".join(f"{n} [{shape(n)}]" for n in net.inputs) + batch,
        "  outputs        " + ", ".join(f"{n} [{shape(n)}]" for n in net.outputs),
        f"  time           {seconds:.2f} s"]))
