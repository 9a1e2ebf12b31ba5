"""Rewrites tests/golden/googlenet.npz with real Caffe (pycaffe must be importable).

    python tests/regen_googlenet_golden.py

The file holds the seeded input, real Caffe's ``prob`` and a few intermediate
blobs for the seeded random weights, and a digest of those weights, so that
test_googlenet.py can check parity where Caffe is not installed.
"""
from __future__ import annotations

import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from caffe2onnx.caffemodel_writer import write_net_weights  # noqa: E402
from caffe2onnx.validators.caffe_reference import caffe_available  # noqa: E402
from test_googlenet import GOLDEN, live_reference, seeded_net, write_golden  # noqa: E402


def main() -> int:
    if not caffe_available():
        print("real Caffe (pycaffe) is not importable here; the golden file must come from real Caffe",
              file=sys.stderr)
        return 1
    net = seeded_net()
    with tempfile.TemporaryDirectory(prefix="googlenet-golden-") as tmp:
        caffemodel = Path(tmp, "googlenet.caffemodel")
        write_net_weights(caffemodel, net)
        inputs, blobs = live_reference(net, caffemodel)
    write_golden(GOLDEN, net, inputs, blobs)
    print(f"wrote {GOLDEN} ({GOLDEN.stat().st_size / 1e6:.2f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
