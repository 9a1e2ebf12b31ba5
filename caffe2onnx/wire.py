"""The few protobuf wire-format pieces we read and write by hand (for zero-copy weights)."""
from __future__ import annotations

LEN = 2  # wire type of length-delimited fields (messages, bytes, packed arrays)


def varint(v: int) -> bytes:
    out = bytearray()
    while True:
        b = v & 0x7F
        v >>= 7
        if not v:
            out.append(b)
            return bytes(out)
        out.append(b | 0x80)


def key(number: int, wire: int) -> bytes:
    return varint(number << 3 | wire)


def len_header(number: int, length: int) -> bytes:
    """Key and length of a length-delimited field whose ``length`` payload bytes follow."""
    return key(number, LEN) + varint(length)
