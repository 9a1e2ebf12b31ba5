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

    from ..errors import one_line
    from ..layers import SPECS
    from .options import emit

    errors = load_all_plugins()
    types = MAPPINGS.types()
    width = max(len(t) for t in types)
    lines = [f"{len(types)} Caffe layer types convert to ONNX:"]
    for t in types:
        fn = MAPPINGS.get(t).fn
        semantics, limits = _doc_lines(fn.__doc__ or "")
        o = origin(t, fn.__doc__)
        where = f"plugin {o.plugin} from {o.source}" if o.plugin else o.source
        lines.append(f"  {t:<{width}}  {semantics}")
        lines.append(f"  {'':<{width}}    Source: {where}")
        lines += [f"  {'':<{width}}    {line}" for line in limits]
    lines += ["", "Dropped at inference (data, loss and training-only layers):",
              "  " + ", ".join(sorted(DATA_LAYERS | TRAINING_ONLY))]
    refused = [t for t in SPECS.types() if t not in MAPPINGS and t != "Input"]
    if refused:
        lines += ["", "Recognised but refused with the reason (no exact static-shape ONNX form):",
                  "  " + ", ".join(refused)]
    lines += ["", "Never run: Python layers (type Python); a plugin registering type 'Python' may convert them."]
    emit("\n".join(lines))  # one write: a reader that stops early (| head) is not an error
    for e in errors:
        print(f"caffe2onnx layers: error: {one_line(str(e))}", file=sys.stderr)
    return 2 if errors else 0
