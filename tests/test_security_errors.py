"""Issue 7, "one clear error every time": one line, the right exit code, in every subcommand."""
from __future__ import annotations

import os
import subprocess
import sys
import time

import numpy as np
import pytest

import caffe2onnx
from caffe2onnx.cli import main
from caffe2onnx.converter import build
from caffe2onnx.errors import UnsupportedLayerError
from harness import ROOT
from loader_util import write
from test_security_files import NET, _model, _one_error_line


def test_unsupported_layers_are_one_line_with_a_count(tmp_path, capsys):
    layers = "".join(f'layer {{ name: "q{i}" type: "Quux{i}" bottom: "ip" top: "q{i}" }}\n' for i in range(50))
    prototxt = write(tmp_path, NET + layers)
    assert main(["convert", str(prototxt), "--random-weights", "0", "-o", str(tmp_path / "m.onnx")]) == 2
    _one_error_line(capsys.readouterr().err, "50 unsupported", "layer 'q0' (type Quux0)", "and 47 more",
                    "nothing written")
    with pytest.raises(UnsupportedLayerError) as e:
        caffe2onnx.load(prototxt)
    assert len(e.value.problems) == 50 and "\n" not in str(e.value)


def test_a_huge_name_gives_a_short_line(tmp_path, capsys):
    prototxt = write(tmp_path, NET + f'layer {{ name: "{"x" * 500_000}" type: "Frobnicate" bottom: "ip" top: "f" }}\n')
    assert main(["convert", str(prototxt), "--random-weights", "0", "-o", str(tmp_path / "m.onnx")]) == 2
    _one_error_line(capsys.readouterr().err, "Frobnicate")


def test_nul_byte_bom_and_directory_as_the_net(tmp_path, capsys):
    out = str(tmp_path / "m.onnx")
    nul = tmp_path / "nul.prototxt"
    nul.write_bytes(NET.encode()[:40] + b"\0" + NET.encode()[40:])
    assert main(["convert", str(nul), "--random-weights", "0", "-o", out]) == 2
    _one_error_line(capsys.readouterr().err, "NUL byte at offset 40")
    bom = tmp_path / "bom.prototxt"
    bom.write_bytes(b"\xef\xbb\xbf" + NET.encode())
    assert main(["convert", str(bom), "--random-weights", "0", "-q", "-o", out]) == 0  # a BOM is accepted
    assert main(["convert", str(tmp_path), "--random-weights", "0", "-o", out]) == 2
    _one_error_line(capsys.readouterr().err, "is a directory")


@pytest.mark.parametrize("option", ["--random-weights", "--seed"])
def test_negative_seeds_are_usage_errors(tmp_path, capsys, option):
    prototxt, caffemodel = _model(tmp_path)
    argv = (["convert", str(prototxt), "--random-weights", "-1", "-o", str(tmp_path / "m.onnx")]
            if option == "--random-weights" else ["validate", str(prototxt), str(caffemodel), "m.onnx", "--seed", "-1"])
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2
    assert "expected a whole number >= 0" in capsys.readouterr().err
    with pytest.raises(caffe2onnx.Caffe2OnnxError, match="seed >= 0"):
        caffe2onnx.load(prototxt, random_weights=-1)


def _validate_files(tmp_path):
    prototxt, caffemodel = _model(tmp_path)
    model = tmp_path / "m.onnx"
    caffe2onnx.converter.convert_file(model, prototxt, caffemodel)
    return [str(prototxt), str(caffemodel), str(model)]


def test_bad_validate_inputs_are_one_line_exit_2(tmp_path, capsys):
    files = _validate_files(tmp_path)
    pickled = tmp_path / "p.npy"
    np.save(pickled, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    corrupt = tmp_path / "c.npz"
    corrupt.write_bytes(b"PK\x03\x04" + b"garbage" * 10)
    huge = tmp_path / "h.npy"  # a header claiming 10^12 elements on a tiny file
    np.save(huge, np.zeros((2, 3), np.float32))
    huge.write_bytes(huge.read_bytes().replace(b"(2, 3)", b"(1000000, 1000000)"))
    for path, part in ((pickled, "pickle"), (corrupt, "cannot read"), (huge, "1,000,000,000,000 elements")):
        assert main(["validate", *files, "--reference", "numpy", "--input", f"data={path}"]) == 2
        _one_error_line(capsys.readouterr().err, "caffe2onnx validate: error:", part)


def test_model_check_failure_is_exit_1_and_one_line_with_onnxruntime_silenced(tmp_path, capfd, monkeypatch):
    from caffe2onnx.op_mappings import MAPPINGS
    relu = MAPPINGS.get("ReLU")

    def broken(layer, g):  # a Relu node with a second, bogus input: onnx's checker refuses it
        g.node("Relu", [layer.inputs[0], layer.inputs[0]], list(layer.outputs))
    monkeypatch.setitem(MAPPINGS._mappings, "ReLU", relu.__class__(relu.caffe_type, broken, relu.check, relu.doc))
    prototxt, caffemodel = _model(tmp_path)
    assert main(["convert", str(prototxt), str(caffemodel), "-o", str(tmp_path / "m.onnx")]) == 1
    captured = capfd.readouterr()
    _one_error_line(captured.err, "fails onnx's checks", "nothing written")
    assert not (tmp_path / "m.onnx").exists()


def _cli(args, **kw) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT), OPENBLAS_NUM_THREADS="1")
    return subprocess.run([sys.executable, "-m", "caffe2onnx", *args], capture_output=True, text=True, env=env,
                          timeout=120, **kw)


def test_keyboard_interrupt_exits_130_and_leaves_no_partial_file(tmp_path):
    prototxt, caffemodel = _model(tmp_path)
    code = ("import sys\n"
            "from caffe2onnx import onnx_writer\n"
            "from caffe2onnx.cli import main\n"
            "def interrupted(self, f, progress=None):\n"
            "    f.write(b'partial'); raise KeyboardInterrupt\n"
            "onnx_writer.BuiltModel._write = interrupted\n"
            f"sys.exit(main(['convert', {str(prototxt)!r}, {str(caffemodel)!r}, '-o', {str(tmp_path / 'm.onnx')!r}]))\n")
    env = dict(os.environ, PYTHONPATH=str(ROOT), OPENBLAS_NUM_THREADS="1")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 130 and "Traceback" not in r.stderr, r.stderr[-2000:]
    assert r.stderr.strip() == "caffe2onnx: interrupted"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["net.prototxt", "w.caffemodel"]


def test_closed_stdout_is_not_an_error():
    read, write_end = os.pipe()
    os.close(read)  # like `| head` having exited: every write gets EPIPE
    try:
        r = subprocess.run([sys.executable, "-m", "caffe2onnx", "layers"], stdout=write_end, stderr=subprocess.PIPE,
                           text=True, env=dict(os.environ, PYTHONPATH=str(ROOT)), timeout=120)
    finally:
        os.close(write_end)
    assert r.returncode == 0 and r.stderr == "", r.stderr[-2000:]


def test_argparse_errors_exit_2():
    r = _cli(["convert", "--opset", "seventeen"])
    assert r.returncode == 2 and "Traceback" not in r.stderr


def _chain(n: int) -> str:
    layers = "".join(f'layer {{ name: "r{i}" type: "ReLU" bottom: "b{i}" top: "b{i + 1}" }}\n' for i in range(n))
    return 'layer { name: "in" type: "Input" top: "b0" input_param { shape { dim: 1 dim: 2 } } }\n' + layers


def test_conversion_time_is_linear_in_the_layer_count(tmp_path):
    import gc
    per_layer = {}
    for n in (1000, 8000):
        net = caffe2onnx.load(write(tmp_path, _chain(n), f"c{n}.prototxt"))
        best = float("inf")
        gc.disable()  # the best of three runs without collector pauses: robust on a busy machine
        try:
            for _ in range(3):
                t0 = time.perf_counter()
                build(net)
                best = min(best, time.perf_counter() - t0)
        finally:
            gc.enable()
        per_layer[n] = best / n
    # Quadratic naming (a set union per layer) made 8000 layers ~8x slower per layer than 1000.
    assert per_layer[8000] < 3 * per_layer[1000], per_layer


def test_onnxruntime_log_lines_never_reach_the_terminal(tmp_path, capfd):
    import onnx
    from onnx import numpy_helper
    files = _validate_files(tmp_path)
    model = onnx.load(files[2])
    model.graph.initializer.append(numpy_helper.from_array(np.ones(3, np.float32), "unused"))  # ORT warns about it
    onnx.save(model, files[2])
    capfd.readouterr()
    assert main(["validate", *files, "--reference", "numpy", "-q"]) == 0
    captured = capfd.readouterr()
    assert ":onnxruntime:" not in captured.err + captured.out, captured.err[-1000:]  # its log line format
