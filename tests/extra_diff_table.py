"""Prints, per layer type of the reference-Caffe extra layers, the largest max-abs and relative diff
of onnxruntime (opset 11 and the newest), OpenVINO f32 and the NumPy reference against real Caffe
(live, or the golden files it wrote) over the test cases; SegNet's mask form against the NumPy
reference of its source. Run from the repo root:

    OPENBLAS_NUM_THREADS=1 python tests/extra_diff_table.py
"""
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path[:0] = [str(Path(__file__).parent), str(Path(__file__).parents[1])]

import caffe2onnx  # noqa: E402
import test_extra_openvino as tov  # noqa: E402
import test_resize  # noqa: E402
from harness import OPSETS, input_layer, numpy_blobs, onnx_blobs, reference  # noqa: E402


def _diff(got, want, names):
    mx = rel = 0.0
    for n in names:
        if n not in want or n not in got:
            continue
        a, b = np.asarray(got[n], np.float64), np.asarray(want[n], np.float64)
        d = float(np.nanmax(np.abs(a - b))) if a.size else 0.0
        mx, rel = max(mx, d), max(rel, d / max(float(np.nanmax(np.abs(b))), 1e-30))
    return mx, rel


def main() -> None:
    rows: dict[str, dict[str, tuple[float, float]]] = {}
    for case, (text, scale, tweak) in sorted(tov.CASES.items()):
        with tempfile.TemporaryDirectory() as tmp:
            net_path, model_path, ref = reference(Path(tmp), case, text, {}, input_scale=scale, tweak_weights=tweak)
            net = caffe2onnx.load(net_path, model_path)
            runs = {f"ort{o}": onnx_blobs(net, o, ref.inputs) for o in sorted({11, OPSETS[-1]})}
            runs.update({f"ov{o}": tov._ov_blobs(net, o, ref.inputs, Path(tmp)) for o in sorted({11, OPSETS[-1]})})
            runs["numpy"] = numpy_blobs(net, ref.inputs)
            for layer in net.layers:
                if layer.type == "Input":
                    continue
                key = layer.type + (" (mask top)" if layer.type == "Pooling" else "")
                row = rows.setdefault(key, {})
                for run, got in runs.items():
                    old = row.get(run, (0.0, 0.0))
                    new = _diff(got, ref.blobs, layer.outputs)
                    row[run] = (max(old[0], new[0]), max(old[1], new[1]))
            rows.setdefault("_source", {})[case] = ref.source
    sources = set(rows.pop("_source").values())
    runs = ["ort11", f"ort{OPSETS[-1]}", "ov11", f"ov{OPSETS[-1]}", "numpy"]
    print(f"reference: real Caffe ({', '.join(sorted(sources))}); cells: max abs / max relative")
    print("| layer | " + " | ".join(runs) + " |")
    print("|---" * (len(runs) + 1) + "|")
    for key, row in sorted(rows.items()):
        print(f"| {key} | " + " | ".join(f"{row[r][0]:.2g} / {row[r][1]:.2g}" for r in runs) + " |")
    segnet = {r: (0.0, 0.0) for r in runs[:4]}
    for case, (shape, body) in sorted(test_resize.SEGNET.items()):
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "net.prototxt"
            path.write_text(input_layer(shape) + test_resize._POOL + test_resize._segnet_up(body))
            net = caffe2onnx.load(path, random_weights=0)
            x = {"data": np.random.default_rng(1).standard_normal(shape).astype(np.float32)}
            want = numpy_blobs(net, x)
            for o in sorted({11, OPSETS[-1]}):
                for run, got in ((f"ort{o}", onnx_blobs(net, o, x)), (f"ov{o}", tov._ov_blobs(net, o, x, Path(tmp)))):
                    new = _diff(got, want, ["up"])
                    segnet[run] = (max(segnet[run][0], new[0]), max(segnet[run][1], new[1]))
    print("| Upsample, SegNet mask form (vs NumPy reference of caffe-segnet) | "
          + " | ".join(f"{segnet[r][0]:.2g} / {segnet[r][1]:.2g}" for r in runs[:4]) + " | - |")


if __name__ == "__main__":
    main()
