"""Issue 7's fuzz harness: mutated prototxts and caffemodels give success or one of our errors.

Seeds are small nets written here (so the harness runs without ../shared) plus the
shared corpus's small prototxts and caffemodels when present. Mutations: truncation,
bit flips, absurd numbers, duplicated layers, cycles, huge strings, mixed V1/V2,
wrong types, deleted lines; binary: truncation, bit flips, absurd varints, spliced
and appended V1 layers. Each case asserts: no exception outside Caffe2OnnxError, no
file created or changed outside the case's temporary directory, and a traced
memory peak under FUZZ_MEMORY_BOUND (random weights are bounded to 16 MiB here).

The normal run is small (200 cases, derandomized); ``CAFFE2ONNX_FUZZ_EXAMPLES=5000
pytest tests/test_fuzz.py -s`` is a long run of 5,000 random cases per test (it prints
the case count and the peak memory).
"""
from __future__ import annotations

import os
import re
import tracemalloc
from pathlib import Path

import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings, strategies as st  # noqa: E402

import caffe2onnx  # noqa: E402
from caffe2onnx import proto  # noqa: E402
from caffe2onnx.caffemodel_writer import write_net_weights  # noqa: E402
from caffe2onnx.converter import build  # noqa: E402
from caffe2onnx.errors import Caffe2OnnxError  # noqa: E402
from harness import CORPUS  # noqa: E402

EXAMPLES = int(os.environ.get("CAFFE2ONNX_FUZZ_EXAMPLES", "0")) or None
FUZZ_MEMORY_BOUND = 256 << 20  # bytes traced by tracemalloc during one case
RANDOM_WEIGHT_BOUND = 16 << 20
STATS = {"cases": 0, "ok": 0, "refused": 0, "peak": 0}

SMALL_NETS = [
    'name: "a"\ninput: "data"\ninput_dim: 1 input_dim: 3 input_dim: 8 input_dim: 8\n'
    'layer { name: "conv" type: "Convolution" bottom: "data" top: "conv" convolution_param { num_output: 4 kernel_size: 3 pad: 1 } }\n'
    'layer { name: "relu" type: "ReLU" bottom: "conv" top: "conv" }\n'
    'layer { name: "pool" type: "Pooling" bottom: "conv" top: "pool" pooling_param { pool: MAX kernel_size: 2 stride: 2 } }\n'
    'layer { name: "ip" type: "InnerProduct" bottom: "pool" top: "ip" inner_product_param { num_output: 5 } }\n'
    'layer { name: "prob" type: "Softmax" bottom: "ip" top: "prob" }\n',
    'name: "b"\nlayer { name: "in" type: "Input" top: "x" input_param { shape { dim: 2 dim: 6 dim: 4 dim: 4 } } }\n'
    'layer { name: "bn" type: "BatchNorm" bottom: "x" top: "x" }\n'
    'layer { name: "sc" type: "Scale" bottom: "x" top: "x" scale_param { bias_term: true } }\n'
    'layer { name: "sl" type: "Slice" bottom: "x" top: "s1" top: "s2" slice_param { axis: 1 slice_point: 2 } }\n'
    'layer { name: "el" type: "Eltwise" bottom: "s1" bottom: "s1" top: "e" eltwise_param { operation: SUM } }\n'
    'layer { name: "cat" type: "Concat" bottom: "e" bottom: "s2" top: "cat" }\n'
    'layer { name: "lrn" type: "LRN" bottom: "cat" top: "lrn" lrn_param { local_size: 3 } }\n'
    'layer { name: "fl" type: "Flatten" bottom: "lrn" top: "fl" }\n',
    'name: "c"\nlayers { name: "data" type: DATA top: "data" top: "label" include { phase: TRAIN } }\n'
    'input: "data"\ninput_shape { dim: 1 dim: 2 dim: 5 dim: 5 }\n'
    'layers { name: "conv" type: CONVOLUTION bottom: "data" top: "conv" blobs_lr: 1 convolution_param { num_output: 3 kernel_size: 2 } }\n'
    'layers { name: "drop" type: DROPOUT bottom: "conv" top: "conv" }\n'
    'layers { name: "loss" type: SOFTMAX_LOSS bottom: "conv" bottom: "label" top: "loss" }\n',
]


def _corpus_seeds() -> tuple[list[Path], list[tuple[Path, Path]]]:
    if not CORPUS.exists():
        return [], []
    texts = sorted(p for p in CORPUS.rglob("*.prototxt") if p.stat().st_size < 16_000)
    models = [(p.with_suffix(".prototxt"), p) for p in sorted(CORPUS.rglob("*.caffemodel"))
              if p.stat().st_size < 200_000 and p.with_suffix(".prototxt").exists()]
    return texts, models


CORPUS_TEXTS, CORPUS_MODELS = _corpus_seeds()
TEXT_SEEDS = SMALL_NETS + [p.read_text(errors="replace") for p in CORPUS_TEXTS]


def _snapshot(*dirs: Path) -> dict[str, tuple[int, int]]:
    out = {}
    for d in dirs:
        for p in d.rglob("*"):
            if p.is_file() or p.is_symlink():
                st = p.lstat()
                out[str(p)] = (st.st_size, st.st_mtime_ns)
    return out


NUMBERS = ["0", "-1", "1", "65536", "2147483647", "2147483648", "4294967296", "99999999999", "1e30", "nan"]
V1_EXTRA = 'layers { name: "v1" type: RELU bottom: "data" top: "v1" }\n'


@st.composite
def mutated_text(draw) -> str:
    text = draw(st.sampled_from(TEXT_SEEDS))
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["truncate", "flip", "number", "dup", "cycle", "huge", "v1", "type", "delete"]))
        if kind == "truncate":
            text = text[:draw(st.integers(0, len(text)))]
        elif kind == "flip" and text:
            data = bytearray(text.encode())
            i = draw(st.integers(0, len(data) - 1))
            data[i] ^= 1 << draw(st.integers(0, 7))
            text = data.decode("utf-8", errors="replace")
        elif kind == "number":
            spans = [m.span() for m in re.finditer(r"\b\d+\b", text)]
            if spans:
                a, b = draw(st.sampled_from(spans))
                text = text[:a] + draw(st.sampled_from(NUMBERS)) + text[b:]
        elif kind == "dup":
            lines = text.splitlines(keepends=True)
            if lines:
                i = draw(st.integers(0, len(lines) - 1))
                text = "".join(lines[:i + 1] + lines[i:])
        elif kind == "cycle":
            tops = re.findall(r'top: "([^"]+)"', text)
            bottoms = [m.span(1) for m in re.finditer(r'bottom: "([^"]+)"', text)]
            if tops and bottoms:
                a, b = draw(st.sampled_from(bottoms))
                text = text[:a] + draw(st.sampled_from(tops)) + text[b:]
        elif kind == "huge":
            names = [m.span(1) for m in re.finditer(r'(?:name|top|bottom|type): "([^"]*)"', text)]
            if names:
                a, b = draw(st.sampled_from(names))
                text = text[:a] + "N" * draw(st.sampled_from([1000, 100_000, 1_000_000])) + text[b:]
        elif kind == "v1":
            text += V1_EXTRA
        elif kind == "type":
            spans = [m.span() for m in re.finditer(r'\b\d+\b|"[^"]*"', text)]
            if spans:
                a, b = draw(st.sampled_from(spans))
                text = text[:a] + draw(st.sampled_from(['"abc"', "12", "-3.5", "true", "{ }", ""])) + text[b:]
        elif kind == "delete":
            lines = text.splitlines(keepends=True)
            if lines:
                del lines[draw(st.integers(0, len(lines) - 1))]
                text = "".join(lines)
    return text


def _run_case(tmp: Path, fn) -> None:
    """fn() must succeed or raise Caffe2OnnxError, within the memory bound, touching only ``tmp``."""
    watched = [tmp]  # the corpus is compared once per test (see the fixture): it is large
    before = _snapshot(*watched)
    cwd_before = sorted(os.listdir("."))
    tracemalloc.reset_peak()
    base = tracemalloc.get_traced_memory()[0]
    try:
        fn()
        STATS["ok"] += 1
    except Caffe2OnnxError as e:
        STATS["refused"] += 1
        assert str(e).strip(), "an error without a message"
    peak = tracemalloc.get_traced_memory()[1] - base
    STATS["peak"] = max(STATS["peak"], peak)
    STATS["cases"] += 1
    assert peak < FUZZ_MEMORY_BOUND, f"traced peak {peak / 2**20:.0f} MiB"
    assert _snapshot(*watched) == before and sorted(os.listdir(".")) == cwd_before, "a file was touched"


@pytest.fixture
def traced(monkeypatch, tmp_path):
    from caffe2onnx.parser import builder
    monkeypatch.setattr(builder, "MAX_RANDOM_WEIGHT_BYTES", RANDOM_WEIGHT_BOUND)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)  # a stray relative write would show up here
    corpus_before = _snapshot(CORPUS) if CORPUS.exists() else {}
    tracemalloc.start()
    yield tmp_path
    tracemalloc.stop()
    assert (_snapshot(CORPUS) if CORPUS.exists() else {}) == corpus_before, "a corpus file was touched"
    import resource
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\nfuzz: {STATS['cases']} cases ({STATS['ok']} converted, {STATS['refused']} refused), "
          f"traced peak per case {STATS['peak'] / 2**20:.1f} MiB, process peak RSS {rss:.0f} MiB")


def _settings(default: int):
    return settings(max_examples=EXAMPLES or default, deadline=None, database=None, derandomize=EXAMPLES is None,
                    suppress_health_check=list(HealthCheck))


def test_mutated_prototxts(traced):
    case = traced / "case"
    case.mkdir()

    @_settings(120)
    @given(text=mutated_text(), weights=st.booleans())
    def run(text, weights):
        path = case / "net.prototxt"
        path.write_text(text, errors="replace")

        def convert():
            net = caffe2onnx.load(path, random_weights=0 if weights else None)
            if weights:
                build(net)
        _run_case(case, convert)
    run()


def _model_seeds(tmp: Path) -> list[tuple[str, bytes]]:
    seeds = []
    for i, text in enumerate(SMALL_NETS[:2]):
        p = tmp / f"seed{i}.prototxt"
        p.write_text(text)
        write_net_weights(tmp / f"seed{i}.caffemodel", caffe2onnx.load(p, random_weights=i))
        seeds.append((text, (tmp / f"seed{i}.caffemodel").read_bytes()))
    for prototxt, model in CORPUS_MODELS:
        seeds.append((prototxt.read_text(), model.read_bytes()))
    return seeds


@st.composite
def mutated_model(draw, seeds) -> tuple[str, bytes]:
    text, data = draw(st.sampled_from(seeds))
    data = bytearray(data)
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["truncate", "flip", "varint", "splice", "v1", "zero"]))
        i = draw(st.integers(0, max(len(data) - 1, 0)))
        if kind == "truncate":
            del data[i:]
        elif kind == "flip" and data:
            data[i] ^= 1 << draw(st.integers(0, 7))
        elif kind == "varint":
            data[i:i + 1] = draw(st.sampled_from([b"\xff\xff\xff\xff\x0f", b"\x80\x80\x80\x80\x80\x80\x80\x80\x80\x01",
                                                  b"\xfe\xff\xff\xff\x07", b"\x00"]))
        elif kind == "splice":
            j = draw(st.integers(0, len(data)))
            data[j:j] = data[i:i + draw(st.integers(1, 64))]
        elif kind == "v1":
            v1 = proto.NetParameter()
            v1.layers.add(name=draw(st.sampled_from(["conv", "ip", "x"])), type=proto.V1LayerParameter.RELU)
            data += v1.SerializeToString()
        elif kind == "zero":
            data[i:i + 16] = bytes(min(16, len(data) - i))
    return text, bytes(data)


def test_mutated_caffemodels(traced):
    case = traced / "case"
    case.mkdir()
    seeds = _model_seeds(traced)

    @_settings(80)
    @given(pair=mutated_model(seeds), alone=st.booleans())
    def run(pair, alone):
        text, data = pair
        (case / "net.prototxt").write_text(text)
        (case / "w.caffemodel").write_bytes(data)

        def convert():
            net = caffe2onnx.load(None if alone else case / "net.prototxt", case / "w.caffemodel")
            build(net)
        _run_case(case, convert)
    run()
