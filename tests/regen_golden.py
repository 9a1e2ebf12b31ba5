"""Regenerates tests/golden/*.npz from REAL Caffe.

Run with a Python that has pycaffe installed (``bash ../shared/caffe/install.sh``):

    python tests/regen_golden.py [pytest args, e.g. tests/test_vision.py]

It runs the parity tests with CAFFE2ONNX_REGEN_GOLDEN=1; the harness then saves
each case's inputs, weights and real Caffe's blobs. Nothing in a golden file
comes from caffe2onnx's own output.
"""
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

if __name__ == "__main__":
    env = dict(os.environ, CAFFE2ONNX_REGEN_GOLDEN="1")
    check = subprocess.run([sys.executable, "-c", "import caffe"], env=env, capture_output=True)
    if check.returncode:
        sys.exit("real Caffe is not importable by this Python; install it first: "
                 "PYTHON=$(which python) bash ../shared/caffe/install.sh")
    sys.exit(subprocess.call([sys.executable, "-m", "pytest", "-q", *(sys.argv[1:] or ["tests"])],
                             cwd=ROOT, env=env))
