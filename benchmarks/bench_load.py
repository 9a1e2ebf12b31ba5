"""Wall time and peak RSS of ``caffe2onnx.load(prototxt, caffemodel)`` on a VGG16-sized model.

    python benchmarks/bench_load.py [--dir /tmp/caffe2onnx-bench] [--runs 3]

Targets: <= 3 s, and peak RSS <= 2x the caffemodel's size. Each run is a fresh
process; the caffemodel is in the page cache (read once beforehand).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.measure import Phases, mb, repeat, run_child, spread, table, verdict, warm_page_cache  # noqa: E402

TIME_LIMIT, RSS_RATIO_LIMIT = 3.0, 2.0


def child(prototxt: str, caffemodel: str) -> None:
    import caffe2onnx
    ph = Phases()
    net = caffe2onnx.load(prototxt, caffemodel)
    ph.mark("load")
    ph.report(parameters=net.parameter_count)


def main(argv: list[str] | None = None) -> int:
    from benchmarks.make_vgg16 import DEFAULT_DIR, make
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dir", type=Path, default=DEFAULT_DIR, help=f"where the VGG16 files are (default {DEFAULT_DIR})")
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args(argv)
    prototxt, caffemodel = make(args.dir)
    warm_page_cache(caffemodel)
    size = caffemodel.stat().st_size
    secs, worst = repeat(lambda: run_child(Path(__file__), [str(prototxt), str(caffemodel)]), args.runs)
    ratio = worst["peak_rss"] / size
    print(f"caffe2onnx.load on {caffemodel} ({worst['parameters']:,} parameters), median of {args.runs} runs\n")
    print(table(["caffemodel", "load time, median (min-max)", "RSS after imports", "peak RSS", "peak / file",
                 "(peak - baseline) / file"],
                [[mb(size), f"{spread(secs, worst)}: {verdict(secs, TIME_LIMIT)} (<= {TIME_LIMIT:g} s)",
                  mb(worst["baseline_rss"]), mb(worst["peak_rss"]),
                  f"{ratio:.2f}x: {verdict(ratio, RSS_RATIO_LIMIT)} (<= {RSS_RATIO_LIMIT:g}x)",
                  f"{(worst['peak_rss'] - worst['baseline_rss']) / size:.2f}x"]]))
    return 0 if secs <= TIME_LIMIT and ratio <= RSS_RATIO_LIMIT else 1


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        child(*sys.argv[2:])
    else:
        sys.exit(main())
