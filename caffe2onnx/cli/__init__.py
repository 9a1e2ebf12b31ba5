"""The ``caffe2onnx`` command line: one module per subcommand.

Exit codes, the same in every subcommand: 0 success; 1 a numerical mismatch or a
built model that fails its checks; 2 usage, input and environment errors (an
unsupported layer included); 130 interrupted. Every failure is one line on stderr.
"""
from __future__ import annotations

import argparse
import os
import sys
import warnings
from typing import NoReturn

from .. import __version__
from ..errors import EXIT_ERROR, EXIT_INTERRUPTED, EXIT_OK, Caffe2OnnxError, one_line
from . import convert_cmd, layers_cmd, validate_cmd
from .options import silence_stdout

SUBCOMMANDS = [convert_cmd, validate_cmd, layers_cmd]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="caffe2onnx",
        description="Convert Caffe models (.prototxt + .caffemodel) to ONNX models that compute the same numbers.",
        epilog="exit status: 0 success, 1 numerical mismatch or a model that fails its checks, "
               "2 usage, input or environment error, 130 interrupted")
    parser.add_argument("--version", action="version", version=f"caffe2onnx {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in SUBCOMMANDS:
        module.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)  # usage errors exit 2 (argparse)
    if not getattr(args, "run", None):
        parser.print_help()
        return EXIT_ERROR
    prog = "caffe2onnx" if args.command == "convert" else f"caffe2onnx {args.command}"
    shown, warnings.showwarning = warnings.showwarning, _show_warning
    try:
        return _run(args, prog)
    finally:  # main() called in-process (tests, embedding) leaves Python's hook as it was
        warnings.showwarning = shown


def _run(args: argparse.Namespace, prog: str) -> int:
    try:
        return args.run(args)
    except Caffe2OnnxError as e:
        _report(f"{prog}: error: {one_line(str(e))}{getattr(args, 'error_note', '')}")
        return e.exit_code
    except KeyboardInterrupt:
        _report(f"{prog}: interrupted")
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # the reader of stdout went away (| head): not our error
        silence_stdout()
        return EXIT_OK
    except MemoryError:
        _report(f"{prog}: error: out of memory")
        return EXIT_ERROR
    except Exception as e:  # a bug: still one line, the traceback on request
        if os.environ.get("CAFFE2ONNX_TRACEBACK"):
            raise
        _report(f"{prog}: internal error: {type(e).__name__}: {one_line(str(e), 300)} (a bug in caffe2onnx; "
                "set CAFFE2ONNX_TRACEBACK=1 for details and please report it)")
        return EXIT_ERROR


def console(argv: list[str] | None = None) -> NoReturn:
    """The ``caffe2onnx`` command: main(), then an exit that skips the interpreter's teardown.

    Every file is closed and every temporary removed before main() returns; what remains of a
    normal exit is unloading onnxruntime and numpy, ~60 ms measured, a tenth of converting a
    550 MB model. Standard output and error are flushed first.
    """
    code = main(argv)
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe: the reader has gone, nothing to lose
            pass
    os._exit(code)


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """Python warnings (ours and libraries') as one line, without the source location."""
    _report(f"caffe2onnx: warning: {one_line(str(message), 400)}")


def _report(line: str) -> None:
    try:
        print(line, file=sys.stderr, flush=True)
    except (OSError, ValueError):
        pass


if __name__ == "__main__":
    console()
