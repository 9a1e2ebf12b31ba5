"""CPU latency of converted GoogLeNet in onnxruntime vs real Caffe's own forward, same input.

    python benchmarks/bench_latency.py [--dir /tmp/caffe2onnx-bench] [--runs 30] [--warmup 3]

Batch 1, seeded random weights. Both sides single-threaded (onnxruntime
intra_op_num_threads=1; Caffe with OPENBLAS_NUM_THREADS=1) and with their
default threads; reports median milliseconds and the Caffe / onnxruntime
ratio. Caffe runs through pycaffe in a fresh subprocess per setting (OpenBLAS
fixes its thread count when it loads); without pycaffe only onnxruntime is timed.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from benchmarks.measure import MARK, run_child, table  # noqa: E402

SHAPE = (1, 3, 224, 224)
THREAD_VARS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def caffe_child(prototxt: str, caffemodel: str, input_path: str, output_path: str, runs: str, warmup: str) -> None:
    """Times net.forward() in pycaffe; saves prob for the cross-check."""
    import json
    os.environ.setdefault("GLOG_minloglevel", "2")
    import caffe
    caffe.set_mode_cpu()
    net = caffe.Net(prototxt, caffe.TEST, weights=caffemodel)
    x = np.load(input_path)
    net.blobs["data"].reshape(*x.shape)
    net.reshape()
    net.blobs["data"].data[...] = x
    times = []
    for i in range(int(warmup) + int(runs)):
        t = time.perf_counter()
        net.forward()
        if i >= int(warmup):
            times.append(time.perf_counter() - t)
    np.save(output_path, net.blobs["prob"].data)
    print(MARK + json.dumps({"times": times, "seconds": statistics.median(times), "peak_rss": 0}), flush=True)


def time_ort(model_bytes: bytes, x: np.ndarray, threads: int | None, runs: int, warmup: int):
    import onnxruntime as ort
    opts = ort.SessionOptions()
    if threads:
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = threads
    sess = ort.InferenceSession(model_bytes, opts, providers=["CPUExecutionProvider"])
    feed = {sess.get_inputs()[0].name: x}
    times = []
    for i in range(warmup + runs):
        t = time.perf_counter()
        out = sess.run(["prob"], feed)[0]
        if i >= warmup:
            times.append(time.perf_counter() - t)
    return statistics.median(times), out


def main(argv: list[str] | None = None) -> int:
    import caffe2onnx.converter as cv
    from benchmarks.bench_convert import googlenet_files
    from benchmarks.make_vgg16 import DEFAULT_DIR
    from caffe2onnx.validators.caffe_reference import caffe_available
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dir", type=Path, default=DEFAULT_DIR, help=f"model folder (default {DEFAULT_DIR})")
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=3)
    args = ap.parse_args(argv)
    prototxt, caffemodel = googlenet_files(args.dir)
    model = cv.convert(prototxt, caffemodel, input_shapes={"data": SHAPE})
    x = np.random.default_rng(1).standard_normal(SHAPE).astype(np.float32)
    have_caffe = caffe_available()
    rows = []
    with tempfile.TemporaryDirectory(prefix="caffe2onnx-latency-") as tmp:
        in_path, out_path = Path(tmp, "x.npy"), Path(tmp, "prob.npy")
        np.save(in_path, x)
        for label, threads in (("1 thread", 1), ("default threads", None)):
            ort_s, ort_prob = time_ort(model.SerializeToString(), x, threads, args.runs, args.warmup)
            row = [label, f"{ort_s * 1e3:.1f} ms"]
            if have_caffe:
                env = {k: v for k, v in os.environ.items() if k not in THREAD_VARS}
                if threads:
                    env.update({k: "1" for k in THREAD_VARS})
                res = run_child(Path(__file__), [str(prototxt), str(caffemodel), str(in_path), str(out_path),
                                                 str(args.runs), str(args.warmup)], env=env)
                diff = float(np.abs(np.load(out_path) - ort_prob).max())
                row += [f"{res['seconds'] * 1e3:.1f} ms", f"{res['seconds'] / ort_s:.2f}x", f"{diff:.1e}"]
            else:
                row += ["(pycaffe not installed)", "", ""]
            rows.append(row)
    print(f"GoogLeNet batch 1 on CPU ({os.cpu_count()} cores), median of {args.runs} runs after {args.warmup} warm-up\n")
    print(table(["threads", "onnxruntime", "Caffe (pycaffe)", "Caffe / onnxruntime", "max abs prob diff"], rows))
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        caffe_child(*sys.argv[2:])
    else:
        sys.exit(main())
