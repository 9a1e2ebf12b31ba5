"""Every figure the README quotes, in one run: conversion against a file copy, memory,
start-up, and onnxruntime against real Caffe.

    python benchmarks/benchmark.py [--dir /tmp/caffe2onnx-bench] [--rounds 5]

1. Conversion, VGG16-sized caffemodel (benchmarks/make_vgg16.py, seeded weights): in
   each of ``--rounds`` rounds, ``cp MODEL COPY && sync`` and ``caffe2onnx convert
   MODEL -o OUT -q`` followed by ``sync`` (the same durability), alternately, each
   in a fresh process, after removing the previous output and a sync that are not
   timed; the page cache holds the caffemodel throughout. Medians, their ratio, and
   the converter process's peak RSS (``wait4``) against the caffemodel's size.
   (convert syncs its own output before renaming it, so the sync after it finds
   little to do; the package is byte-compiled first, as ``pip install`` does.)
2. ``caffe2onnx --help``: median wall time of ``--rounds`` fresh processes.
3. Latency, batch 1, GoogLeNet (examples/googlenet) and ResNet-50 (the corpus),
   seeded weights: the converted model in onnxruntime CPU (default graph
   optimisation) against real Caffe's own ``net.forward()`` (pycaffe, CPU) in a
   worker process, at one thread (onnxruntime intra/inter-op 1; OPENBLAS/OMP 1)
   and at every core (both libraries' defaults); the two sides alternate in
   blocks of ``--block`` forwards, ``--rounds`` blocks each, and the ratio is
   median onnxruntime / median Caffe. Each model is first validated blob by blob
   against real Caffe (``caffe2onnx.validators.check.validate``).

Targets (issue #12): convert <= 1.5x the copy, peak RSS <= 1.2x the caffemodel,
--help < 0.1 s, GoogLeNet <= 0.15x and ResNet-50 <= 0.17x Caffe at one thread,
every blob within tolerance. Exit status 1 if one is missed.
"""
from __future__ import annotations

import argparse
import compileall
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")  # as caffe2onnx itself does (model_check.quiet_onnxruntime)
THREAD_VARS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
SHAPE = (1, 3, 224, 224)
RESNET50 = ROOT.parent / "shared/corpus/architectures/resnet_kaiminghe/ResNet-50-deploy.prototxt"
TARGETS = {"convert": 1.5, "rss": 1.2, "help": 0.1, "GoogLeNet": 0.15, "ResNet-50": 0.17}


def _env(threads: int | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in THREAD_VARS}
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env.setdefault("GLOG_minloglevel", "2")
    if threads:
        env.update({k: str(threads) for k in THREAD_VARS})
    return env


def timed(cmd: list[str], **kw) -> tuple[float, int]:
    """Wall seconds and peak RSS (bytes) of one fresh process."""
    t = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, **kw)
    _, status, usage = os.wait4(p.pid, 0)
    seconds = time.perf_counter() - t
    p.returncode = os.waitstatus_to_exitcode(status)
    if p.returncode:
        raise RuntimeError(f"{' '.join(cmd)} failed with exit code {p.returncode}")
    return seconds, usage.ru_maxrss * 1024


def sync() -> float:
    t = time.perf_counter()
    os.sync()
    return time.perf_counter() - t


def bench_convert(directory: Path, rounds: int) -> dict:
    from benchmarks.make_vgg16 import make
    from benchmarks.measure import warm_page_cache
    prototxt, caffemodel = make(directory)
    warm_page_cache(caffemodel)
    out, copy = directory / "vgg16.onnx", directory / "vgg16.copy.caffemodel"
    conv, conv_only, cp, rss = [], [], [], []
    for _ in range(rounds):
        for target in (copy, out):
            target.unlink(missing_ok=True)
        sync()
        s, _ = timed(["cp", str(caffemodel), str(copy)])
        cp.append(s + sync())
        s, peak = timed([sys.executable, "-m", "caffe2onnx", "convert", str(prototxt), str(caffemodel),
                         "-o", str(out), "-q"], env=_env())
        conv_only.append(s)
        conv.append(s + sync())
        rss.append(peak)
    copy.unlink(missing_ok=True)
    out.unlink(missing_ok=True)
    size = caffemodel.stat().st_size
    return {"size": size, "convert": statistics.median(conv), "convert_only": statistics.median(conv_only),
            "copy": statistics.median(cp), "peak_rss": max(rss), "all_convert": conv, "all_copy": cp}


def bench_help(rounds: int) -> dict:
    bare = [timed([sys.executable, "-c", "pass"])[0] for _ in range(rounds)]
    helps = [timed([sys.executable, "-m", "caffe2onnx", "--help"], env=_env())[0] for _ in range(rounds)]
    return {"help": statistics.median(helps), "python": statistics.median(bare)}


class CaffeWorker:
    """pycaffe in a child process (its OpenBLAS thread count is fixed when it loads)."""

    def __init__(self, prototxt: Path, caffemodel: Path, x_path: Path, threads: int | None):
        self.p = subprocess.Popen([sys.executable, __file__, "--caffe-worker", str(prototxt), str(caffemodel),
                                   str(x_path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                  env=_env(threads))
        assert self.p.stdout.readline().strip() == "ready"

    def forwards(self, n: int) -> list[float]:
        self.p.stdin.write(f"{n}\n")
        self.p.stdin.flush()
        return json.loads(self.p.stdout.readline())

    def close(self) -> None:
        self.p.stdin.close()
        self.p.wait(timeout=60)


def caffe_worker(prototxt: str, caffemodel: str, x_path: str) -> None:
    import caffe
    caffe.set_mode_cpu()
    net = caffe.Net(prototxt, caffe.TEST, weights=caffemodel)
    net.blobs["data"].data[...] = np.load(x_path)
    print("ready", flush=True)
    for line in sys.stdin:
        times = []
        for _ in range(int(line)):
            t = time.perf_counter()
            net.forward()
            times.append(time.perf_counter() - t)
        print(json.dumps(times), flush=True)


def bench_latency(name: str, prototxt: Path, directory: Path, rounds: int, block: int) -> dict:
    import onnx
    import onnxruntime as ort
    import caffe2onnx
    from caffe2onnx.caffemodel_writer import write_net_weights
    from caffe2onnx.converter import convert_file
    from caffe2onnx.validators.check import validate
    net = caffe2onnx.load(prototxt, random_weights=0, input_shapes={"data": SHAPE})
    caffemodel, onnx_path = directory / f"{name}.caffemodel", directory / f"{name}.onnx"
    write_net_weights(caffemodel, net)
    if net.shape("data") != caffe2onnx.load(prototxt).shape("data"):  # Caffe must build the batch-1 net too
        text = prototxt.read_text().replace("dim: 10\n", "dim: 1\n", 1)
        prototxt = directory / f"{name}.prototxt"
        prototxt.write_text(text)
    net = convert_file(onnx_path, prototxt, caffemodel)
    result = validate(prototxt, caffemodel, onnx_path, reference="caffe")
    worst = max(result.blobs, key=lambda b: b.max_rel)
    opts = ort.SessionOptions()
    opts.optimized_model_filepath = str(directory / f"{name}.ort.onnx")
    ort.InferenceSession(str(onnx_path), opts, providers=["CPUExecutionProvider"])
    affine = {l.name for l in net.layers if l.type in ("BatchNorm", "Scale")}
    optimized = onnx.load(opts.optimized_model_filepath).graph.node
    left = sum(n.name.split("/")[0] in affine for n in optimized)
    x = np.random.default_rng(1).standard_normal(SHAPE).astype(np.float32)
    x_path = directory / f"{name}.x.npy"
    np.save(x_path, x)
    out = {"blobs": len(result.blobs), "passed": result.passed, "failures": len(result.failures),
           "worst": (worst.tensor, worst.max_rel, worst.max_abs), "affine_left": left, "nodes": len(optimized),
           "mapped_nodes": len(onnx.load(str(onnx_path), load_external_data=False).graph.node),
           "macs": multiply_adds(net)}
    for label, threads in (("1 thread", 1), ("all threads", None)):
        opts = ort.SessionOptions()
        if threads:
            opts.intra_op_num_threads = opts.inter_op_num_threads = threads
        sess = ort.InferenceSession(str(onnx_path), opts, providers=["CPUExecutionProvider"])
        worker = CaffeWorker(prototxt, caffemodel, x_path, threads)
        try:
            worker.forwards(2)  # warm-up
            for _ in range(2):
                sess.run(None, {"data": x})
            ort_t, caffe_t = [], []
            for _ in range(rounds):
                for _ in range(block):
                    t = time.perf_counter()
                    sess.run(None, {"data": x})
                    ort_t.append(time.perf_counter() - t)
                caffe_t += worker.forwards(block)
        finally:
            worker.close()
        out[label] = (statistics.median(ort_t), statistics.median(caffe_t))
    return out


def multiply_adds(net) -> int:
    """Multiply-adds of a net's convolutions and inner products (the rest is noise at these sizes)."""
    total = 0
    for layer in net.layers:
        if layer.type in ("Convolution", "InnerProduct") and layer.weight_shapes:
            per_output = int(np.prod(layer.weight_shapes[0][1:]))  # Cin/group * kh * kw, or K
            total += int(np.prod(layer.output_shapes[0])) * per_output
    return total


def sgemm_peak() -> float:
    """GFLOP/s of a large float32 matrix product on one core (OpenBLAS, one thread, best of 5)."""
    code = ("import numpy as np, time\n"
            "a = np.random.default_rng(0).random((2048, 2048), dtype=np.float32); b = a.T.copy(); a @ b\n"
            "times = []\n"
            "for _ in range(5):\n"
            "    t = time.perf_counter(); a @ b; times.append(time.perf_counter() - t)\n"
            "print(2 * 2048 ** 3 / min(times) / 1e9)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=_env(1), check=True)
    return float(out.stdout)


def machine() -> str:
    import onnx
    import onnxruntime
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")),
               platform.processor())
    mem = next(int(line.split()[1]) for line in open("/proc/meminfo") if line.startswith("MemTotal")) / 2**20
    load = " ".join(f"{v:.2f}" for v in os.getloadavg())
    return (f"{os.cpu_count()} cores ({cpu}), {mem:.0f} GiB, no GPU used; Python {platform.python_version()}, "
            f"numpy {np.__version__}, onnx {onnx.__version__}, onnxruntime {onnxruntime.__version__}; "
            f"load average {load}")


def main(argv: list[str] | None = None) -> int:
    from benchmarks.make_vgg16 import DEFAULT_DIR
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dir", type=Path, default=DEFAULT_DIR, help=f"model folder (default {DEFAULT_DIR})")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--block", type=int, default=5, help="forwards per side per round (latency)")
    args = ap.parse_args(argv)
    # As `pip install` leaves it: byte-compiled (PYTHONDONTWRITEBYTECODE would otherwise make every
    # fresh process compile the package from source, ~0.1 s of each conversion measured here).
    compileall.compile_dir(str(ROOT / "caffe2onnx"), quiet=1)
    print(f"machine: {machine()}")
    ok = True

    def check(value: float, key: str) -> str:
        nonlocal ok
        ok &= value <= TARGETS[key]
        return "ok" if value <= TARGETS[key] else "MISSED"

    c = bench_convert(args.dir, args.rounds)
    ratio, rss = c["convert"] / c["copy"], c["peak_rss"] / c["size"]
    print(f"\nconvert VGG16-sized ({c['size'] / 1e6:.0f} MB caffemodel), median of {args.rounds}, interleaved:")
    print(f"  cp + sync                       {c['copy']:.2f} s   (all: {' '.join(f'{v:.2f}' for v in c['all_copy'])})")
    print(f"  caffe2onnx convert -q + sync    {c['convert']:.2f} s   (all: "
          f"{' '.join(f'{v:.2f}' for v in c['all_convert'])}; the convert process alone {c['convert_only']:.2f} s)")
    print(f"  ratio convert / copy            {ratio:.2f}x   target <= {TARGETS['convert']}x  {check(ratio, 'convert')}"
          f"   (the convert process alone against cp + sync: {c['convert_only'] / c['copy']:.2f}x)")
    print(f"  peak RSS                        {c['peak_rss'] / 1e6:.0f} MB = {rss:.2f}x the caffemodel   "
          f"target <= {TARGETS['rss']}x  {check(rss, 'rss')}")
    h = bench_help(args.rounds)
    print(f"\ncaffe2onnx --help                 {h['help'] * 1e3:.0f} ms (python -c pass: {h['python'] * 1e3:.0f} ms)   "
          f"target < {TARGETS['help'] * 1e3:.0f} ms  {check(h['help'], 'help')}")
    peak = sgemm_peak()
    print(f"\none core's float32 peak here: {peak:.0f} GFLOP/s (a 2048x2048 matrix product, OpenBLAS one "
          "thread, best of 5): the latency floor of an exact float32 model on one core")
    nets = {"GoogLeNet": ROOT / "examples/googlenet/deploy.prototxt", "ResNet-50": RESNET50}
    with tempfile.TemporaryDirectory(prefix="caffe2onnx-bench-") as tmp:
        for name, prototxt in nets.items():
            if not prototxt.exists():
                print(f"\n{name}: {prototxt} not present, skipped")
                ok = False
                continue
            r = bench_latency(name, prototxt, Path(tmp), args.rounds, args.block)
            tensor, max_rel, max_abs = r["worst"]
            ok &= r["passed"]
            print(f"\n{name}, batch 1, seeded weights: {r['blobs']} blobs vs real Caffe, "
                  f"{'all within tolerance' if r['passed'] else str(r['failures']) + ' OUT OF TOLERANCE'} "
                  f"(worst max_rel {max_rel:.1e} at {tensor}, max_abs {max_abs:.1e}); ONNX nodes {r['mapped_nodes']}, "
                  f"{r['nodes']} after onnxruntime's optimisation, {r['affine_left']} of them from BatchNorm/Scale")
            for label in ("1 thread", "all threads"):
                o, cf = r[label]
                verdict = f"target <= {TARGETS[name]}x  {check(o / cf, name)}" if label == "1 thread" else ""
                print(f"  {label:<12} onnxruntime {o * 1e3:7.2f} ms   Caffe {cf * 1e3:7.2f} ms   "
                      f"ratio {o / cf:.3f}x   {verdict}")
            gflop, (o, cf) = 2 * r["macs"] / 1e9, r["1 thread"]
            need = gflop / (TARGETS[name] * cf)
            print(f"  {gflop:.2f} GFLOP: onnxruntime at 1 thread runs {gflop / o:.0f} GFLOP/s = {gflop / o / peak:.0%} "
                  f"of the core's peak; {TARGETS[name]}x Caffe ({TARGETS[name] * cf * 1e3:.1f} ms) would need "
                  f"{need:.0f} GFLOP/s = {need / peak:.1f}x that peak")
    print(f"\nload average at the end: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    print("all targets met" if ok else "some targets MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    if sys.argv[1:2] == ["--caffe-worker"]:
        caffe_worker(*sys.argv[2:5])
    else:
        sys.exit(main())
