"""Reading prototxt text into our NetParameter, with file:line:column errors."""
from __future__ import annotations

from pathlib import Path

from google.protobuf import text_format

from .. import proto
from ..errors import CaffeParseError, one_line
from ..safe_io import MAX_PROTOTXT_BYTES, read_input_bytes


def read_prototxt(path: str | Path):
    path = str(path)
    data = read_input_bytes(path, "prototxt", MAX_PROTOTXT_BYTES)
    nul = data.find(b"\0")
    if nul >= 0:
        raise CaffeParseError(f"{path}: not a text prototxt: NUL byte at offset {nul} (a binary caffemodel? "
                              "give it as WEIGHTS, or alone)")
    text = data.decode("utf-8", errors="replace").removeprefix("\ufeff")  # a UTF-8 BOM is fine
    return parse_prototxt(text, path)


def parse_prototxt(text: str, source: str = "<string>"):
    net = proto.current().NetParameter()
    try:
        text_format.Parse(text, net)
    except text_format.ParseError as e:
        line, col = e.GetLine(), e.GetColumn()
        msg = str(e)
        # ParseError's text starts with "line:col : " when it knows the position.
        if line is not None and msg.startswith(f"{line}:"):
            msg = msg.split(" : ", 1)[-1]
        where = f"{source}:{line}:{col}" if line is not None else source
        hint = ""
        if "has no field named" in msg:  # most often a fork's own layer parameter
            hint = " (a Caffe fork's field? read the net with the fork's caffe.proto: --caffe-proto FILE)"
        raise CaffeParseError(f"{where}: prototxt syntax error: {one_line(msg, 200)}{hint}") from None
    except (ValueError, RecursionError) as e:  # the text parser's own limits (e.g. nesting depth)
        raise CaffeParseError(f"{source}: prototxt cannot be parsed: {one_line(str(e), 200)}") from None
    return net
