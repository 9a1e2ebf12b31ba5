"""Which file is which: a caffemodel given as the net, a prototxt given as the weights, and the
phase a caffemodel's own net was saved in."""
from __future__ import annotations

import codecs
import os
import re
from pathlib import Path

from ..errors import CaffeParseError
from ..safe_io import MAX_CAFFEMODEL_BYTES, check_input_file
from .caffemodel import read_caffemodel
from .rules import TEST, State, included

_HEAD = 4096
# Bytes no prototxt holds; a binary NetParameter has one (a length, or a field tag
# such as layer's 0xa2 0x06) within its first few bytes.
_CONTROL = re.compile(rb"[\x00-\x08\x0e-\x1f\x7f]")
_PHASES = {0: "TRAIN", 1: "TEST"}


def _kind(path: str | Path) -> str | None:
    """'binary', 'text', or None when unreadable or empty (the readers report those)."""
    if not os.path.lexists(path):
        return None
    check_input_file(path, "net or weights", MAX_CAFFEMODEL_BYTES)  # never a FIFO, device or directory
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
        with os.fdopen(fd, "rb") as f:
            head = f.read(_HEAD)
    except OSError:
        return None
    if not head:
        return None
    if _CONTROL.search(head):
        return "binary"
    try:
        codecs.getincrementaldecoder("utf-8")().decode(head, final=False)  # the cut may split a character
    except UnicodeDecodeError:
        return "binary"
    return "text"


def route(prototxt, caffemodel):
    """Returns (prototxt, caffemodel, the caffemodel read if it came as the prototxt, else None)."""
    if caffemodel is not None and _kind(caffemodel) == "text":
        raise CaffeParseError(f"{caffemodel}: this is a text file (a prototxt?), not a binary caffemodel; "
                              "give it as the net, and the .caffemodel as the weights")
    if prototxt is None or _kind(prototxt) != "binary":
        return prototxt, caffemodel, None
    try:
        read = read_caffemodel(prototxt)
    except CaffeParseError:
        return prototxt, caffemodel, None  # not a caffemodel either: the prototxt reader says why
    if caffemodel is not None:
        raise CaffeParseError(f"{prototxt}: this is a binary caffemodel, not a prototxt; give the prototxt "
                              "as the net (are the two arguments swapped?), or the caffemodel alone")
    return None, prototxt, read


def embedded_phase(net, requested: int | None, level: int, stages: frozenset[str], source: str) -> int:
    """The phase to read a caffemodel's own net in: the one Caffe saved it in (Net::Init writes it
    into every layer), since the other phase's layers are not in the file."""
    saved = {layer.phase for layer in net.layer if layer.HasField("phase")}
    if len(saved) != 1:
        return TEST if requested is None else requested
    (phase,) = saved
    if requested is None or requested == phase:
        return phase
    differs = [l for l in net.layer if included(State(phase, level, stages), l)
               != included(State(requested, level, stages), l)]
    if differs:
        l, more = differs[0], (f" and {len(differs) - 1} other(s)" if len(differs) > 1 else "")
        raise CaffeParseError(
            f"{source}: the net in this caffemodel was saved in phase {_PHASES[phase]} and holds only that "
            f"phase's layers (phase {_PHASES[requested]} would drop layer '{l.name}' (type {l.type}){more}); "
            f"omit the phase to use the net as saved, or give the {_PHASES[requested]} prototxt")
    return requested
