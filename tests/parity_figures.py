"""Per parity case of tests/test_bvlc.py and tests/test_recurrent.py: the largest max abs / max rel
diff (rel = abs / max |Caffe|) over every blob, ONNX at opset 11 and the newest, and the NumPy
reference, against real Caffe (live, else the golden files it wrote).

    OPENBLAS_NUM_THREADS=1 python tests/parity_figures.py
"""
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path[:0] = [str(Path(__file__).resolve().parent), str(Path(__file__).resolve().parents[1])]
import caffe2onnx  # noqa: E402
import test_bvlc  # noqa: E402
import test_recurrent  # noqa: E402
from caffe2onnx.converter import max_opset  # noqa: E402
from harness import input_layer, numpy_blobs, onnx_blobs, reference  # noqa: E402


def stats(got, want, names):
    ma = mr = 0.0
    n = 0
    for k in names:
        if k not in want or k not in got:
            continue
        a, b = np.asarray(got[k], np.float64), np.asarray(want[k], np.float64)
        d = float(np.abs(a - b).max()) if a.size else 0.0
        ma, mr, n = max(ma, d), max(mr, d / max(float(np.abs(b).max()), 1e-30)), n + 1
    return ma, mr, n


cases = {f"bvlc_{k}": input_layer(s) + t for k, (s, t) in test_bvlc.CASES.items()}
cases.update({f"recurrent_{k}": v for k, v in test_recurrent.CASES.items()})
for cid, text in sorted(cases.items()):
    with tempfile.TemporaryDirectory() as tmp:
        net_path, model_path, ref = reference(Path(tmp), cid, text, {})
        net = caffe2onnx.load(net_path, model_path)
        names = [t for layer in net.layers for t in layer.outputs]
        row = [cid, ref.source]
        for opset in (11, max_opset()):
            ma, mr, n = stats(onnx_blobs(net, opset, ref.inputs), ref.blobs, names)
            row.append(f"onnx{opset} {ma:.2e}/{mr:.2e}")
        ma, mr, n = stats(numpy_blobs(net, ref.inputs), ref.blobs, names)
        row.append(f"numpy {ma:.2e}/{mr:.2e} ({n} blobs)")
        print("  ".join(row), flush=True)
