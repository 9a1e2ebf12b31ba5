"""Writes fork_caffe.proto: caffe2onnx's caffe.proto plus the ScaledTanh parameter of an example fork.

A real fork ships its own caffe.proto; this one is BVLC's schema with two additions, as forks do:

    python examples/plugin/make_fork_proto.py examples/plugin/fork_caffe.proto
"""
import sys
from pathlib import Path

ADDED_FIELD = "  optional ScaledTanhParameter scaled_tanh_param = 9001;\n"
ADDED_MESSAGE = """
message ScaledTanhParameter {
  optional float alpha = 1 [default = 1];
  optional float beta = 2 [default = 1];
}
"""


def fork_proto_text() -> str:
    import caffe2onnx.proto
    text = (Path(caffe2onnx.proto.__file__).parent / "caffe.proto").read_text()
    head = "message LayerParameter {\n"
    assert head in text
    return text.replace(head, head + ADDED_FIELD, 1) + ADDED_MESSAGE


if __name__ == "__main__":
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "fork_caffe.proto")
    out.write_text(fork_proto_text())
    print(f"wrote {out}")
