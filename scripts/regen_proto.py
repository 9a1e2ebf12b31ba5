"""Regenerate caffe2onnx/proto/caffe_descriptor.py from caffe2onnx/proto/caffe.proto.

Usage (from anywhere; needs the dev dependency ``grpcio-tools``)::

    python scripts/regen_proto.py

It runs::

    python -m grpc_tools.protoc --descriptor_set_out=<tmp file> \\
        -I caffe2onnx/proto caffe2onnx/proto/caffe.proto

and writes the single FileDescriptorProto of the resulting FileDescriptorSet,
serialized, as the bytes literal ``SERIALIZED`` in caffe_descriptor.py.
Commit the regenerated file together with the .proto change.
"""

import os
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PROTO_DIR = os.path.join(ROOT, "caffe2onnx", "proto")
PROTO = os.path.join(PROTO_DIR, "caffe.proto")
OUT = os.path.join(PROTO_DIR, "caffe_descriptor.py")

HEADER = '''\
# GENERATED FILE -- DO NOT EDIT.
# Serialized google.protobuf.FileDescriptorProto of caffe.proto (same folder).
# Regenerate with:  python scripts/regen_proto.py
# which runs:       python -m grpc_tools.protoc --descriptor_set_out=<tmp> \\
#                       -I caffe2onnx/proto caffe2onnx/proto/caffe.proto
'''


def compile_descriptor() -> bytes:
    from google.protobuf import descriptor_pb2

    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "caffe.pb")
        cmd = [sys.executable, "-m", "grpc_tools.protoc",
               "--descriptor_set_out=" + out, "-I", PROTO_DIR, PROTO]
        subprocess.run(cmd, check=True)
        with open(out, "rb") as f:
            fds = descriptor_pb2.FileDescriptorSet.FromString(f.read())
    if len(fds.file) != 1:
        raise SystemExit("expected one file in the descriptor set, got %d" % len(fds.file))
    return fds.file[0].SerializeToString()


def render(data: bytes, width: int = 76) -> str:
    lines = []
    chunk = b""
    for i in range(len(data)):
        piece = data[i:i + 1]
        if len(repr(chunk + piece)) > width:
            lines.append("    %r\n" % chunk)
            chunk = b""
        chunk += piece
    if chunk:
        lines.append("    %r\n" % chunk)
    return HEADER + "\nSERIALIZED = (\n" + "".join(lines) + ")\n"


def main() -> None:
    text = render(compile_descriptor())
    with open(OUT, "w", encoding="ascii", newline="\n") as f:
        f.write(text)
    print("wrote", os.path.relpath(OUT, ROOT))


if __name__ == "__main__":
    main()
