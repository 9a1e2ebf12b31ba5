"""``caffe2onnx layers``: the supported Caffe layer types, generated from the registries."""
from __future__ import annotations

import argparse
import sys


def add_parser(sub) -> None:
    p = sub.add_parser("layers", help="list the Caffe layer types that convert",
                       description="List the Caffe layer types that convert to ONNX (built-in and from "
                                   "installed plugins), with the Caffe semantics each mapping reproduces, "
                                   "where the layer comes from (BVLC, a fork, or a plugin package) and its "
                                   "limits. Exit 2 if a plugin fails to load.")
    p.set_defaults(run=run)


def _doc_lines(doc: str) -> tuple[str, list[str]]:
    """The docstring's first line (the semantics) and its ``Limits:`` lines."""
    lines = [l.strip() for l in (doc or "").strip().splitlines()]
    return (lines[0] if lines else ""), [l for l in lines if l.startswith("Limits:")]


def run(args: argparse.Namespace) -> int:
    from ..op_mappings import MAPPINGS
    from ..parser.builder import DATA_LAYERS, TRAINING_ONLY
    from ..plugins import load_all_plugins, origin

    errors = load_all_plugins()
    types = MAPPINGS.types()
    width = max(len(t) for t in types)
    print(f"{len(types)} Caffe layer types convert to ONNX:")
    for t in types:
        fn = MAPPINGS.get(t).fn
        semantics, limits = _doc_lines(fn.__doc__ or "")
        o = origin(t, fn.__doc__)
        where = f"plugin {o.plugin} from {o.source}" if o.plugin else o.source
        print(f"  {t:<{width}}  {semantics}")
        print(f"  {'':<{width}}    Source: {where}")
        for line in limits:
            print(f"  {'':<{width}}    {line}")
    print("\nDropped at inference (data, loss and training-only layers):")
    print("  " + ", ".join(sorted(DATA_LAYERS | TRAINING_ONLY)))
    from ..layers import SPECS
    refused = [t for t in SPECS.types() if t not in MAPPINGS and t != "Input"]
    if refused:
        print("\nRecognised but refused with the reason (no exact static-shape ONNX form):")
        print("  " + ", ".join(refused))
    print("\nNever run: Python layers (type Python); a plugin registering type 'Python' may convert them.")
    for e in errors:
        print(f"caffe2onnx layers: error: {e}", file=sys.stderr)
    return 2 if errors else 0
