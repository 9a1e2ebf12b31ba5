"""The ``caffe2onnx`` command line: one module per subcommand."""
from __future__ import annotations

import argparse
import sys

from .. import __version__
from . import convert_cmd, layers_cmd

SUBCOMMANDS = [convert_cmd, layers_cmd]
try:  # validate arrives with the validators package
    from . import validate_cmd
    SUBCOMMANDS.insert(1, validate_cmd)
except ImportError:  # pragma: no cover
    pass


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="caffe2onnx",
        description="Convert Caffe models (.prototxt + .caffemodel) to ONNX models that compute the same numbers.")
    parser.add_argument("--version", action="version", version=f"caffe2onnx {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in SUBCOMMANDS:
        module.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "run", None):
        parser.print_help()
        return 2
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
