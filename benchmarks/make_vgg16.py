"""Writes a VGG16 deploy prototxt and a seeded-random VGG16-sized caffemodel (~553 MB).

    python benchmarks/make_vgg16.py [DIR] [--seed 0] [--force]

Simonyan & Zisserman's configuration D: 13 3x3 convolutions in five stages,
three fully connected layers, 138,357,544 parameters. Weights are float32
from numpy's default_rng(seed), He-scaled, generated and streamed to the file
one layer at a time (peak memory: the largest layer, fc6, 411 MB).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Iterator

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from caffe2onnx.caffemodel_writer import write_caffemodel  # noqa: E402

DEFAULT_DIR = Path("/tmp/caffe2onnx-bench")
STAGES = [(64, 2), (128, 2), (256, 3), (512, 3), (512, 3)]  # (channels, convolutions) per stage
FCS = [("fc6", 4096), ("fc7", 4096), ("fc8", 1000)]
INPUT = (1, 3, 224, 224)
PARAMS = 138_357_544


def _layer(name: str, type_: str, bottom: str | None, top: str, body: str = "") -> str:
    bottom_line = f'  bottom: "{bottom}"\n' if bottom else ""
    return f'layer {{\n  name: "{name}"\n  type: "{type_}"\n{bottom_line}  top: "{top}"\n{body}}}\n'


def layer_table() -> list[tuple[str, str, tuple[int, ...]]]:
    """(name, type, weight shape) of every layer with weights, in order; biases are (out,)."""
    table, channels = [], INPUT[1]
    for s, (width, n) in enumerate(STAGES, 1):
        for i in range(1, n + 1):
            table.append((f"conv{s}_{i}", "Convolution", (width, channels, 3, 3)))
            channels = width
    fan_in = channels * (INPUT[2] // 2 ** len(STAGES)) * (INPUT[3] // 2 ** len(STAGES))
    for name, width in FCS:
        table.append((name, "InnerProduct", (width, fan_in)))
        fan_in = width
    return table


def prototxt() -> str:
    dims = " ".join(f"dim: {d}" for d in INPUT)
    out = ['name: "VGG_ILSVRC_16_layers"\n',
           _layer("data", "Input", None, "data", f"  input_param {{ shape {{ {dims} }} }}\n")]
    top = "data"
    for s, (width, n) in enumerate(STAGES, 1):
        for i in range(1, n + 1):
            name = f"conv{s}_{i}"
            out.append(_layer(name, "Convolution", top, name,
                              f"  convolution_param {{ num_output: {width} pad: 1 kernel_size: 3 }}\n"))
            out.append(_layer(f"relu{s}_{i}", "ReLU", name, name))
            top = name
        out.append(_layer(f"pool{s}", "Pooling", top, f"pool{s}",
                          "  pooling_param { pool: MAX kernel_size: 2 stride: 2 }\n"))
        top = f"pool{s}"
    for name, width in FCS:
        out.append(_layer(name, "InnerProduct", top, name, f"  inner_product_param {{ num_output: {width} }}\n"))
        top = name
        if name != "fc8":
            k = name[2:]
            out.append(_layer(f"relu{k}", "ReLU", name, name))
            out.append(_layer(f"drop{k}", "Dropout", name, name, "  dropout_param { dropout_ratio: 0.5 }\n"))
    out.append(_layer("prob", "Softmax", top, "prob"))
    return "".join(out)


def random_layers(seed: int) -> Iterator[tuple[str, str, list[np.ndarray]]]:
    """Layer by layer, so that only one layer's weights are ever in memory."""
    rng = np.random.default_rng(seed)
    for name, type_, shape in layer_table():
        w = rng.standard_normal(shape, dtype=np.float32)
        w *= np.float32(np.sqrt(2.0 / np.prod(shape[1:])))
        b = rng.uniform(-0.1, 0.1, shape[0]).astype(np.float32)
        yield name, type_, [w, b]
        del w, b


def make(directory: Path, seed: int = 0, force: bool = False) -> tuple[Path, Path]:
    """Writes DIR/vgg16.prototxt and DIR/vgg16.caffemodel (kept if present, unless force)."""
    directory.mkdir(parents=True, exist_ok=True)
    net, model = directory / "vgg16.prototxt", directory / "vgg16.caffemodel"
    net.write_text(prototxt())
    if force or not model.exists():
        write_caffemodel(model, random_layers(seed), name="VGG_ILSVRC_16_layers")
    return net, model


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dir", nargs="?", type=Path, default=DEFAULT_DIR, help=f"output folder (default {DEFAULT_DIR})")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--force", action="store_true", help="rewrite the caffemodel even if it exists")
    args = ap.parse_args(argv)
    assert sum(int(np.prod(s)) + s[0] for _, _, s in layer_table()) == PARAMS
    t = time.perf_counter()
    net, model = make(args.dir, args.seed, force=args.force)
    print(f"{net}\n{model}: {model.stat().st_size / 1e6:.1f} MB, {PARAMS:,} parameters "
          f"({time.perf_counter() - t:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
