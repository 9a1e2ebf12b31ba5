"""Conversion time against the number of layers: 1k, 10k and 100k-layer chains.

    python benchmarks/bench_layer_count.py [--sizes 1000 10000 100000]

Each net is an Input followed by a chain of layers cycling through ReLU,
Power and TanH (each reads the previous top). Times ``caffe2onnx.load`` (the
prototxt text parse included) and ``converter.build`` separately, and prints
the time per layer. Target: linear time, i.e. the time per layer at the
largest size within 2x of the smallest (the ratio is printed; exit 1 if not).
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

RATIO_LIMIT = 2.0
TYPES = ('type: "ReLU"', 'type: "Power" power_param { scale: 0.5 }', 'type: "TanH"')


def chain(n: int) -> str:
    head = 'name: "chain"\nlayer { name: "in" type: "Input" top: "b0" input_param { shape { dim: 1 dim: 8 } } }\n'
    return head + "".join(f'layer {{ name: "l{i}" {TYPES[i % 3]} bottom: "b{i}" top: "b{i + 1}" }}\n'
                          for i in range(n))


def measure(n: int, tmp: Path) -> tuple[float, float]:
    import caffe2onnx
    from caffe2onnx.converter import build
    path = tmp / f"chain{n}.prototxt"
    path.write_text(chain(n))
    t0 = time.perf_counter()
    net = caffe2onnx.load(path)
    t1 = time.perf_counter()
    model = build(net)
    t2 = time.perf_counter()
    assert len(model.model.graph.node) == n
    return t1 - t0, t2 - t1


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[1000, 10_000, 100_000])
    args = ap.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory(prefix="caffe2onnx-bench-") as tmp:
        measure(100, Path(tmp))  # warm the imports
        for n in args.sizes:
            load_s, build_s = measure(n, Path(tmp))
            rows.append((n, load_s, build_s))
    print(f"{'layers':>8} {'load s':>8} {'build s':>8} {'load us/layer':>14} {'build us/layer':>15} {'total us/layer':>15}")
    for n, load_s, build_s in rows:
        print(f"{n:>8} {load_s:>8.2f} {build_s:>8.2f} {1e6 * load_s / n:>14.1f} {1e6 * build_s / n:>15.1f} "
              f"{1e6 * (load_s + build_s) / n:>15.1f}")
    (n0, l0, b0), (n1, l1, b1) = rows[0], rows[-1]
    ratio = ((l1 + b1) / n1) / ((l0 + b0) / n0)
    ok = ratio <= RATIO_LIMIT
    print(f"\ntime per layer at {n1} / at {n0}: {ratio:.2f} (limit {RATIO_LIMIT:g}) -> {'PASS' if ok else 'FAIL'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
