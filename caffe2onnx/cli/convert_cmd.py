"""``caffe2onnx convert``: Caffe net (+ weights) to a checked ONNX file."""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from ..errors import Caffe2OnnxError

_BIG_MODEL_BYTES = 100 << 20  # show progress for models above this size, on a terminal


def add_parser(sub) -> None:
    p = sub.add_parser(
        "convert", help="convert a Caffe model to ONNX",
        description="Convert NET.prototxt (+ WEIGHTS.caffemodel, or a caffemodel alone) to ONNX. "
                    "The model is checked (onnx checker, strict shape inference, onnxruntime load) "
                    "before it is written; on any error nothing is written and the exit code is 1.")
    p.add_argument("net", help="deploy .prototxt (or a .caffemodel alone, using its embedded net)")
    p.add_argument("weights", nargs="?", help=".caffemodel with trained weights (bound by layer name)")
    p.add_argument("-o", "--output", required=True, help="ONNX file to write")
    p.add_argument("--opset", type=int, default=None, help="ONNX opset (default 17; 11 up to the newest "
                                                          "the installed onnx knows)")
    p.add_argument("--input-shape", action="append", default=[], metavar="NAME=D0,D1,...",
                   help="override or supply an input shape, e.g. data=1,3,224,224 (repeatable)")
    p.add_argument("--dynamic-batch", action="store_true", help="make the batch dimension symbolic")
    p.add_argument("--random-weights", type=int, metavar="SEED",
                   help="fill seeded random weights (structure-only use and testing)")
    p.add_argument("--stage", action="append", default=[], help="NetState stage for include/exclude rules")
    p.add_argument("--level", type=int, default=0, help="NetState level for include/exclude rules")
    p.add_argument("-q", "--quiet", action="store_true", help="print nothing on success")
    p.add_argument("--fold", action="store_true", help="fold BatchNorm/Scale/Bias into the preceding "
                   "Convolution/InnerProduct weights (their own tops then leave the model)")
    p.add_argument("--external-data", action="store_true", help="write the weights to OUTPUT.data (ONNX "
                   "external data); chosen automatically above protobuf's 2 GiB limit for one file")
    p.add_argument("--validate", action="store_true",
                   help="after writing, compare every layer's output with --validate-reference on seeded "
                        "random inputs (CPU, default tolerances of 'caffe2onnx validate'); exit 1 on a "
                        "numerical mismatch (the file is kept for inspection), 2 if the check cannot run")
    p.add_argument("--validate-reference", choices=["auto", "caffe", "numpy"], default="auto",
                   help="reference for --validate: real Caffe, the NumPy reference, or auto (caffe if "
                        "importable, else numpy)")
    p.set_defaults(run=run, parser=p)


def parse_shapes(items: list[str], parser: argparse.ArgumentParser) -> dict[str, tuple[int, ...]]:
    shapes = {}
    for item in items:
        name, sep, dims = item.rpartition("=")
        try:
            shape = tuple(int(d) for d in dims.replace("x", ",").split(",") if d.strip())
        except ValueError:
            shape = ()
        if not sep or not name or not shape:
            parser.error(f"--input-shape {item!r}: expected NAME=D0,D1,... e.g. data=1,3,224,224")
        shapes[name] = shape
    return shapes


def _is_binary(path: str) -> bool:
    try:
        with open(path, "rb") as f:
            head = f.read(4096)
    except OSError:
        return False
    return path.endswith(".caffemodel") or b"\0" in head


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
    from ..converter import DEFAULT_OPSET, build
    from ..parser import load

    shapes = parse_shapes(args.input_shape, args.parser)
    prototxt, caffemodel = args.net, args.weights
    if caffemodel is None and _is_binary(prototxt):
        prototxt, caffemodel = None, args.net
    if caffemodel is None and args.random_weights is None:
        args.parser.error("give WEIGHTS.caffemodel, or --random-weights SEED for a structure-only model")
    size = Path(caffemodel).stat().st_size if caffemodel and Path(caffemodel).exists() else 0
    progress = _Progress(not args.quiet and size >= _BIG_MODEL_BYTES and sys.stderr.isatty())
    opset = args.opset or DEFAULT_OPSET
    try:
        net = load(prototxt, caffemodel, input_shapes=shapes, random_weights=args.random_weights,
                   stages=args.stage, level=args.level)
        progress.step("read net and weights")
        built = build(net, opset=opset, dynamic_batch=args.dynamic_batch, fold=args.fold)
        progress.step("mapped layers to ONNX")
        external = args.external_data or built.needs_external_data()
        if external and not args.external_data and not args.quiet:
            print(f"caffe2onnx: the model is {built.byte_size() / 2**30:.2f} GiB, over protobuf's 2 GiB limit for "
                  f"one file: its weights go to {args.output}.data (ONNX external data)", file=sys.stderr)
        built.save_checked(args.output, external_data=external, progress=progress.bytes)
        progress.step(f"checked (onnx + onnxruntime), wrote {args.output}")
    except Caffe2OnnxError as e:
        print(f"caffe2onnx: error: {e}", file=sys.stderr)
        print(f"caffe2onnx: nothing written to {args.output}", file=sys.stderr)
        return 1
    if not args.quiet:
        _summary(net, built, args, time.perf_counter() - progress.t0)
    if args.validate:
        from .validate_cmd import validate_converted
        return validate_converted(net, prototxt, caffemodel, args.output, args.validate_reference, args.quiet)
    return 0


def _summary(net, built, args, seconds: float) -> None:
    from collections import Counter

    types = Counter(l.type for l in net.layers)
    top = ", ".join(f"{t} {n}" for t, n in types.most_common(6))
    more = f", +{len(types) - 6} more types" if len(types) > 6 else ""
    shape = lambda n: "x".join(str(d) for d in net.shape(n))  # noqa: E731
    batch = " (batch symbolic: N)" if args.dynamic_batch else ""
    print(f"caffe2onnx: {args.net} -> {args.output}")
    print(f"  Caffe layers   {len(net.layers)} ({top}{more})")
    model, (mapped, kept) = built.model, built.node_counts or (len(built.model.graph.node),) * 2
    print(f"  ONNX nodes     {kept} at opset {model.opset_import[0].version} ({mapped} as mapped, before "
          f"the graph rewrites{', with --fold' if args.fold else ''})")
    print(f"  parameters     {net.parameter_count:,}")
    print("  inputs         " + ", ".join(f"{n} [{shape(n)}]" for n in net.inputs) + batch)
    print("  outputs        " + ", ".join(f"{n} [{shape(n)}]" for n in net.outputs))
    print(f"  time           {seconds:.2f} s")
