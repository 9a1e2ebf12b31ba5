"""Wall time and peak RSS of a full conversion to an .onnx file: GoogLeNet and VGG16-sized.

    python benchmarks/bench_convert.py [--dir /tmp/caffe2onnx-bench] [--runs 3] [--via file api cli]

Each entry point is measured in fresh processes: ``file`` is
``caffe2onnx.converter.convert_file(out, prototxt, caffemodel)`` (weights
streamed to the file), ``api`` is ``convert(...)`` + ``save_model(...)`` (a
complete in-memory ModelProto), ``cli`` is ``caffe2onnx convert -q`` run
in-process. One more run per path times its phases with the peak RSS reached
by the end of each, to show where time and memory go. Targets, VGG16: <= 5 s
and peak RSS <= 2.5x the caffemodel's size; the exit status says whether the
file-writing paths (file, cli) meet them.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.measure import Phases, mb, repeat, run_child, spread, table, verdict, warm_page_cache  # noqa: E402

TIME_LIMIT, RSS_RATIO_LIMIT = 5.0, 2.5  # for the VGG16-sized model
GOOGLENET = ROOT / "examples" / "googlenet" / "deploy.prototxt"


def child(mode: str, prototxt: str, caffemodel: str, output: str) -> None:
    import caffe2onnx.converter as cv
    ph = Phases()
    if mode == "file":
        cv.convert_file(output, prototxt, caffemodel)
        ph.mark("convert_file")
    elif mode == "api":
        cv.save_model(cv.convert(prototxt, caffemodel), output)
        ph.mark("convert + save_model")
    elif mode == "cli":
        from caffe2onnx.cli import main
        if main(["convert", prototxt, caffemodel, "-o", output, "-q"]) != 0:
            raise SystemExit("caffe2onnx convert failed")
        ph.mark("caffe2onnx convert")
    elif mode == "file-phases":  # what convert_file does
        net = cv.load(prototxt, caffemodel)
        ph.mark("load")
        built = cv.build(net, cv.DEFAULT_OPSET)
        ph.mark("build")
        built.check()
        ph.mark("BuiltModel.check")
        built.save(output)
        ph.mark("BuiltModel.save")
    else:  # "api-phases": what convert + save_model do
        net = cv.load(prototxt, caffemodel)
        ph.mark("load")
        model = cv.build_model(net, cv.DEFAULT_OPSET)
        ph.mark("build_model")
        cv.check_model(model)
        ph.mark("check_model")
        cv.save_model(model, output)
        ph.mark("save_model")
    ph.report(onnx_bytes=Path(output).stat().st_size)


def googlenet_files(directory: Path) -> tuple[Path, Path]:
    """The example deploy.prototxt and a caffemodel of seeded random weights for it."""
    model = directory / "googlenet.caffemodel"
    if not model.exists():
        import caffe2onnx
        from caffe2onnx.caffemodel_writer import write_net_weights
        directory.mkdir(parents=True, exist_ok=True)
        write_net_weights(model, caffe2onnx.load(GOOGLENET, random_weights=0))
    return GOOGLENET, model


def main(argv: list[str] | None = None) -> int:
    from benchmarks.make_vgg16 import DEFAULT_DIR, make
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dir", type=Path, default=DEFAULT_DIR, help=f"model and output folder (default {DEFAULT_DIR})")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--via", nargs="+", choices=["file", "api", "cli"], default=["file", "api", "cli"])
    args = ap.parse_args(argv)
    models = {"GoogLeNet": googlenet_files(args.dir), "VGG16": make(args.dir)}
    rows, phase_rows, ok = [], [], True
    for name, (prototxt, caffemodel) in models.items():
        warm_page_cache(caffemodel)
        size = caffemodel.stat().st_size
        out = args.dir / f"{name.lower()}.onnx"
        files = [str(prototxt), str(caffemodel), str(out)]
        for via in args.via:
            secs, worst = repeat(lambda: run_child(Path(__file__), [via, *files]), args.runs)
            ratio = worst["peak_rss"] / size
            targets = ""
            if name == "VGG16":
                targets = f"time {verdict(secs, TIME_LIMIT)}, RSS {verdict(ratio, RSS_RATIO_LIMIT)}"
                if via == "api":  # convert() returns a whole in-memory ModelProto by design
                    targets += " (informative)"
                else:
                    ok = ok and secs <= TIME_LIMIT and ratio <= RSS_RATIO_LIMIT
            rows.append([name, via, mb(size), mb(worst["onnx_bytes"]), spread(secs, worst),
                         mb(worst["baseline_rss"]), mb(worst["peak_rss"]), f"{ratio:.2f}x", targets])
            if via == "cli":
                continue
            for p in run_child(Path(__file__), [f"{via}-phases", *files])["phases"]:
                phase_rows.append([name, via, p["phase"], f"{p['seconds']:.2f} s", mb(p["rss"]),
                                   mb(p["peak_rss"]), f"{p['peak_rss'] / size:.2f}x"])
    print(f"conversion to .onnx (opset 17, checked), median of {args.runs} fresh processes\n")
    print(table(["model", "via", "caffemodel", ".onnx", "time, median (min-max)", "RSS after imports", "peak RSS",
                 "peak / caffemodel", f"targets (VGG16: <= {TIME_LIMIT:g} s, <= {RSS_RATIO_LIMIT:g}x)"], rows))
    print("\nwhere it goes (one more run, phase by phase; peak RSS = highest so far)\n")
    print(table(["model", "via", "phase", "time", "RSS at end", "peak RSS", "peak / caffemodel"], phase_rows))
    return 0 if ok else 1


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        child(*sys.argv[2:])
    else:
        sys.exit(main())
