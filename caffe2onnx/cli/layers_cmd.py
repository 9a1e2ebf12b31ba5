"""``caffe2onnx layers``: the supported Caffe layer types, generated from the registries."""
from __future__ import annotations

import argparse


def add_parser(sub) -> None:
    p = sub.add_parser("layers", help="list the Caffe layer types that convert",
                       description="List the Caffe layer types that convert to ONNX, with the Caffe "
                                   "semantics each mapping reproduces.")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..op_mappings import MAPPINGS
    from ..parser.builder import DATA_LAYERS, TRAINING_ONLY

    from .options import emit

    width = max(len(t) for t in MAPPINGS.types())
    lines = [f"{len(MAPPINGS.types())} Caffe layer types convert to ONNX:"]
    lines += [f"  {t:<{width}}  {MAPPINGS.get(t).doc}" for t in MAPPINGS.types()]
    lines += ["", "Dropped at inference (data, loss and training-only layers):",
              "  " + ", ".join(sorted(DATA_LAYERS | TRAINING_ONLY))]
    emit("\n".join(lines))  # one write: a reader that stops early (| head) is not an error
    return 0
