"""Reading prototxt text into our NetParameter, with file:line:column errors."""
from __future__ import annotations

from pathlib import Path

from google.protobuf import text_format

from .. import proto
from ..errors import CaffeParseError


def read_prototxt(path: str | Path):
    path = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8-sig", errors="replace")  # -sig: a BOM is accepted
    except OSError as e:
        raise CaffeParseError(f"{path}: cannot read prototxt: {e.strerror}") from None
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
        if "has no field named" in msg:  # most often a fork's own layer parameter
            msg += " (a Caffe fork's field? read the net with the fork's caffe.proto: --caffe-proto FILE)"
        raise CaffeParseError(f"{where}: prototxt syntax error: {msg}") from None
    return net
