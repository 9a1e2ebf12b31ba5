"""``convert --validate``: the parity check of a file just written, with validate's exit codes.

It runs at batch 1 (or ``--batch``) whatever batch the net declares: a net declaring batch
10000 must not make the check run 10000 images. A model written with a symbolic batch is
checked as written. A model written at a static batch N cannot take another batch, so the
check runs on a second, in-memory model built the same way (same flags, same weights) from
the net reloaded at batch 1. Why this is exact: the mappings and rewrites emit the same
nodes for any batch, only the batch dimension in shapes differs, so the batch-1 model checks
the same graph; the alternative (converting with a symbolic batch internally) would refuse
the nets whose Reshape depends on the batch. If the net cannot be read at batch 1 (a shape
fixed by its parameters), the written file is checked at its own batch, and the output says so.
"""
from __future__ import annotations

import argparse
import sys
from typing import Callable

from ..errors import EXIT_ERROR, EXIT_MISMATCH, EXIT_OK, Caffe2OnnxError, one_line
from .options import check_report_paths, emit, write_reports


def validate_converted(args: argparse.Namespace, net, prototxt, caffemodel, build: Callable) -> int:
    """Checks ``args.output`` (converted from ``net`` by ``build(net, args)``) with the check's options."""
    from ..validators.check import validate
    from ..validators.report import format_table
    # pycaffe reads only its own schema: a net read with a fork's caffe.proto is judged by numpy
    reference = args.reference or "auto"
    reference = "numpy" if args.caffe_proto and reference == "auto" else reference
    try:
        check_report_paths(args, (args.net, args.weights, args.output))  # nor the model just written
        check_net, model, note = _at_batch(args, net, prototxt, caffemodel, build)
        result = validate(None, None, model, reference=reference, provider=args.provider, net=check_net,
                          atol=args.atol, rtol=args.rtol, input_specs=args.input, seed=args.seed,
                          preprocess=_check_preprocess(args), timeout=args.timeout, caffe_proto=args.caffe_proto,
                          runtime=args.runtime)
        if not isinstance(model, str):  # the report names the file the check stands for
            result.onnx = f"{args.output} (as built at batch {args.batch or 1})"
    except Caffe2OnnxError as e:
        emit(f"caffe2onnx: validation could not run: {one_line(str(e))}", file=sys.stderr)
        return EXIT_ERROR
    if not write_reports(result, args, "caffe2onnx"):
        return EXIT_ERROR
    if not result.passed:
        emit(format_table(result, layers=args.layers), file=sys.stderr)
        emit(f"caffe2onnx: {args.output} was written but does NOT match the {result.reference} reference",
             file=sys.stderr)
        return EXIT_MISMATCH
    if args.layers and not args.quiet:
        emit(format_table(result, layers=True))
    if not args.quiet:
        worst = max(result.blobs, key=lambda b: b.max_rel)
        emit(f"  validated      {len(result.blobs)} tensors match the {result.reference} reference on "
             f"{result.provider}{note} (worst max rel diff {worst.max_rel:.1e}, rtol {result.rtol:g})")
    return EXIT_OK


def _at_batch(args, net, prototxt, caffemodel, build: Callable):
    """(net, model, note) for the check at ``args.batch`` (default 1); see the module docstring."""
    from ..parser import load
    batch = args.batch or 1
    # --input-shape set the written model's shapes (already in ``net``); only the batch changes
    shapes = {n: (batch, *net.shape(n)[1:]) for n in net.inputs if net.shape(n)}
    if all(tuple(net.shape(n)) == tuple(s) for n, s in shapes.items()):
        return net, args.output, ""
    try:
        small = load(prototxt, caffemodel, input_shapes=shapes, random_weights=args.random_weights,
                     stages=args.stage, level=args.level, phase=args.phase, caffe_proto=args.caffe_proto)
    except Caffe2OnnxError as e:  # a batch fixed by the net's own parameters
        if args.dynamic_batch:
            raise
        return net, args.output, f" at the net's own batch ({one_line(str(e), 120)})"
    from .options import cut_net
    small = cut_net(small, args)
    if args.dynamic_batch:
        return small, args.output, f" at batch {batch}"
    return small, build(small, args).to_proto(), f" at batch {batch} (a model built the same way)"


def _check_preprocess(args: argparse.Namespace):
    """--input images' preprocessing: in convert, --mean/--scale are the baked ones (deploy options),
    which the check applies to the reference's input by itself (validators/baked.py)."""
    from ..validators.inputs import Preprocess
    return Preprocess(None, args.mean_file, 1.0, args.channel_order)
