"""Issue 7, "never destroy" and bounded reading: outputs never replace inputs or special files,
inputs are regular files read within a stated bound, mixed V1/V2 caffemodels are refused."""
from __future__ import annotations

import os
import stat
import subprocess
import sys
import tracemalloc

import numpy as np
import pytest

import caffe2onnx
from caffe2onnx import proto
from caffe2onnx.caffemodel_writer import write_net_weights
from caffe2onnx.cli import main
from caffe2onnx.errors import CaffeParseError, Caffe2OnnxError
from caffe2onnx.wire import key, len_header, varint
from harness import ROOT
from loader_util import write

NET = ('layer { name: "in" type: "Input" top: "data" input_param { shape { dim: 2 dim: 3 dim: 8 dim: 8 } } }\n'
       'layer { name: "conv" type: "Convolution" bottom: "data" top: "conv" convolution_param { num_output: 4 kernel_size: 3 } }\n'
       'layer { name: "relu" type: "ReLU" bottom: "conv" top: "conv" }\n'
       'layer { name: "ip" type: "InnerProduct" bottom: "conv" top: "ip" inner_product_param { num_output: 5 } }\n')
IP_NET = ('layer { name: "in" type: "Input" top: "x" input_param { shape { dim: 1 dim: 3 } } }\n'
          'layer { name: "ip" type: "InnerProduct" bottom: "x" top: "y" inner_product_param { num_output: 2 } }\n')


def _model(tmp_path):
    prototxt = write(tmp_path, NET)
    caffemodel = tmp_path / "w.caffemodel"
    write_net_weights(caffemodel, caffe2onnx.load(prototxt, random_weights=0))
    return prototxt, caffemodel


def _convert(*args) -> int:
    return main(["convert", *map(str, args), "-q"])


def _one_error_line(err: str, *parts: str) -> None:
    lines = [l for l in err.splitlines() if l.strip()]
    assert len(lines) == 1 and len(lines[0]) < 700, err[:2000]
    assert "Traceback" not in err
    for p in parts:
        assert p in lines[0], lines[0]


@pytest.mark.parametrize("how", ["same", "symlink", "dotdot", "hardlink", "prototxt"])
def test_output_that_is_an_input_is_refused_before_reading(tmp_path, capsys, how):
    prototxt, caffemodel = _model(tmp_path)
    before = caffemodel.read_bytes()
    target = {"same": caffemodel, "prototxt": prototxt, "dotdot": tmp_path / "sub" / ".." / "w.caffemodel",
              "symlink": tmp_path / "link.onnx", "hardlink": tmp_path / "hard.onnx"}[how]
    (tmp_path / "sub").mkdir()
    if how == "symlink":
        target.symlink_to(caffemodel)
    if how == "hardlink":
        os.link(caffemodel, target)
    text = prototxt.read_text()
    assert _convert(prototxt, caffemodel, "-o", target) == 2
    _one_error_line(capsys.readouterr().err, "refusing to overwrite an input")
    assert caffemodel.read_bytes() == before and prototxt.read_text() == text
    with pytest.raises(Caffe2OnnxError, match="input"):
        caffe2onnx.converter.convert_file(target, prototxt, caffemodel)
    assert caffemodel.read_bytes() == before


def test_existing_fifo_or_directory_output_is_refused(tmp_path, capsys):
    prototxt, caffemodel = _model(tmp_path)
    fifo = tmp_path / "out.fifo"
    os.mkfifo(fifo)  # stands in for a device node such as /dev/null: os.replace would replace it
    assert _convert(prototxt, caffemodel, "-o", fifo) == 2
    _one_error_line(capsys.readouterr().err, "a FIFO", "refusing to replace it")
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    (tmp_path / "d.onnx").mkdir()
    assert _convert(prototxt, caffemodel, "-o", tmp_path / "d.onnx") == 2
    _one_error_line(capsys.readouterr().err, "a directory")


def test_dev_null_output_is_refused(tmp_path, capsys):
    prototxt, caffemodel = _model(tmp_path)
    assert _convert(prototxt, caffemodel, "-o", "/dev/null") == 2
    _one_error_line(capsys.readouterr().err, "character device")
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)


def test_bad_output_directories_are_one_line_exit_2(tmp_path, capsys):
    prototxt, caffemodel = _model(tmp_path)
    assert _convert(prototxt, caffemodel, "-o", tmp_path / "missing" / "m.onnx") == 2
    _one_error_line(capsys.readouterr().err, "does not exist")
    (tmp_path / "file").write_text("x")
    assert _convert(prototxt, caffemodel, "-o", tmp_path / "file" / "m.onnx") == 2
    _one_error_line(capsys.readouterr().err, "not a directory")


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write into a read-only directory")
def test_output_directory_without_permission(tmp_path, capsys):
    prototxt, caffemodel = _model(tmp_path)
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    assert _convert(prototxt, caffemodel, "-o", locked / "m.onnx") == 2
    _one_error_line(capsys.readouterr().err, "no permission")


def test_output_mode_follows_the_umask(tmp_path):
    prototxt, caffemodel = _model(tmp_path)
    old = os.umask(0o027)
    try:
        assert _convert(prototxt, caffemodel, "-o", tmp_path / "m.onnx") == 0
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(tmp_path / "m.onnx").st_mode) == 0o640  # mkstemp alone gave 0600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx", "net.prototxt", "w.caffemodel"]


def test_convert_writes_nothing_outside_its_output(tmp_path):
    """Not even onnxruntime's usage records (1.32 writes an sqlite file under ~/.cache otherwise)."""
    prototxt, caffemodel = _model(tmp_path)
    home, out = tmp_path / "home", tmp_path / "out"
    home.mkdir()
    out.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("ORT_DISABLE_TELEMETRY", "XDG_CACHE_HOME")}
    env.update(HOME=str(home), PYTHONPATH=str(ROOT))
    r = subprocess.run([sys.executable, "-m", "caffe2onnx", "convert", str(prototxt), str(caffemodel), "-o",
                        str(out / "m.onnx"), "-q", "--validate", "--reference", "numpy"], capture_output=True,
                       text=True, timeout=120, env=env, cwd=str(out))
    assert r.returncode == 0, r.stderr
    assert [p.relative_to(home) for p in home.rglob("*")] == []
    assert [p.name for p in out.iterdir()] == ["m.onnx"]


def _run_limited(code: str, seconds: float = 30, mem: int = 3 << 30) -> subprocess.CompletedProcess:
    """Runs code in a child with an address-space limit and a time limit (the old code ran away)."""
    pre = f"import resource; resource.setrlimit(resource.RLIMIT_AS, ({mem}, {mem}))\n"
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-c", pre + code], capture_output=True, text=True, timeout=seconds,
                          env=env, cwd=str(ROOT))


@pytest.mark.parametrize("special", ["/dev/zero", "fifo", "dir"])
def test_special_files_as_inputs_are_refused_at_once(tmp_path, special):
    path = {"/dev/zero": "/dev/zero", "fifo": str(tmp_path / "in.fifo"), "dir": str(tmp_path)}[special]
    if special == "fifo":
        os.mkfifo(path)
    prototxt = write(tmp_path, IP_NET)
    code = ("import caffe2onnx, sys\n"
            "try:\n"
            f"    caffe2onnx.load({str(prototxt)!r}, {path!r})\n"
            "except caffe2onnx.Caffe2OnnxError as e:\n"
            "    print('REFUSED', e); sys.exit(0)\n"
            "sys.exit(5)\n")
    try:
        r = _run_limited(code, seconds=60)
    except subprocess.TimeoutExpired:
        pytest.fail(f"reading {special} hung")
    assert r.returncode == 0 and "REFUSED" in r.stdout and "not a regular file" in r.stdout, r.stdout + r.stderr[-500:]
    for argv in (["convert", path, "--random-weights", "0", "-o", str(tmp_path / "m.onnx")],):
        assert main(argv) == 2


def test_input_size_limits_are_checked_before_reading(tmp_path, monkeypatch):
    from caffe2onnx.errors import InputFileError
    from caffe2onnx.parser import caffemodel, text
    prototxt, weights = _model(tmp_path)
    monkeypatch.setattr(text, "MAX_PROTOTXT_BYTES", 100)
    monkeypatch.setattr(caffemodel, "MAX_CAFFEMODEL_BYTES", 100)
    with pytest.raises(InputFileError, match=r"prototxt is [\d,]+ bytes, over the limit of 100 bytes"):
        caffe2onnx.load(prototxt)
    with pytest.raises(InputFileError, match=r"caffemodel is [\d,]+ bytes, over the limit of 100 bytes"):
        caffe2onnx.load(None, weights)


def test_random_weights_bound_is_checked_before_generating(tmp_path):
    # 24000 x 25000 floats = 2.4 GB: the old code generated them (as float64 first) before any check.
    net = IP_NET.replace("dim: 3", "dim: 25000").replace("num_output: 2", "num_output: 24000")
    prototxt = write(tmp_path, net)
    code = ("import caffe2onnx, sys\n"
            "try:\n"
            f"    caffe2onnx.load({str(prototxt)!r}, random_weights=0)\n"
            "except caffe2onnx.Caffe2OnnxError as e:\n"
            "    print('REFUSED', e); sys.exit(0)\n"
            "except MemoryError:\n"
            "    sys.exit(6)\n"
            "sys.exit(5)\n")
    r = _run_limited(code, seconds=120, mem=2 << 30)
    assert r.returncode == 0 and "GiB" in r.stdout and "nothing was generated" in r.stdout, r.stdout + r.stderr[-500:]


def _unpacked_caffemodel(path, n: int) -> None:
    """One InnerProduct layer whose blob stores n floats as n separate (unpacked) fields."""
    values = np.arange(n, dtype="<f4")
    records = np.empty((n, 5), np.uint8)
    records[:, 0] = key(5, 5)[0]  # BlobProto.data, wire type 5 (fixed32), one field per value
    records[:, 1:] = values.view(np.uint8).reshape(n, 4)
    shape = len_header(1, len(varint(1) + varint(n))) + varint(1) + varint(n)
    blob = len_header(7, len(shape)) + shape + records.tobytes()
    bias = len_header(7, 4 + 5) + len_header(7, 2) + key(1, 0) + varint(1) + key(5, 5) + np.float32(0.5).tobytes()
    head = proto.LayerParameter(name="ip", type="InnerProduct").SerializeToString()
    layer = head + len_header(7, len(blob)) + blob + bias
    path.write_bytes(len_header(100, len(layer)) + layer)


def test_unpacked_floats_are_read_without_an_object_per_value(tmp_path):
    n = 1_000_000
    prototxt = write(tmp_path, IP_NET.replace("dim: 3", f"dim: {n}").replace("num_output: 2", "num_output: 1"))
    _unpacked_caffemodel(tmp_path / "u.caffemodel", n)
    tracemalloc.start()
    try:
        net = caffe2onnx.load(prototxt, tmp_path / "u.caffemodel")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    w = net.layer("ip").weights
    assert w[0].shape == (1, n) and w[0][0, 12345] == 12345.0 and w[1][0] == 0.5
    assert peak < 8 * 5 * n, f"peak {peak / 1e6:.1f} MB for a {5 * n / 1e6:.0f} MB caffemodel"  # old code: ~70x


def _mixed_caffemodel(path) -> None:
    net = proto.NetParameter()
    v1 = net.layers.add(name="ip", type=proto.V1LayerParameter.INNER_PRODUCT)
    v2 = net.layer.add(name="ip", type="InnerProduct")
    for layer, value in ((v1, 1.0), (v2, 2.0)):
        for shape in ((2, 3), (2,)):
            blob = layer.blobs.add()
            blob.shape.dim.extend(shape)
            blob.data.extend([value] * int(np.prod(shape)))
    path.write_bytes(net.SerializeToString())


def test_caffemodel_mixing_v1_and_v2_layers_is_refused_naming_both(tmp_path):
    # Real Caffe (this build) aborts on such a file: "Refusing to upgrade inconsistent NetParameter".
    _mixed_caffemodel(tmp_path / "mix.caffemodel")
    with pytest.raises(CaffeParseError, match=r"mixes V1 'layers' and current 'layer'.*'ip' is V1 layers #0 and layer #0"):
        caffe2onnx.load(write(tmp_path, IP_NET), tmp_path / "mix.caffemodel")


def test_caffemodel_copies_out_of_the_map_are_bounded(tmp_path, monkeypatch):
    """The map costs no memory; what is decoded (unpacked floats) or parsed (the net) is bounded."""
    from caffe2onnx import proto
    from caffe2onnx.errors import ResourceLimitError
    from caffe2onnx.parser import caffemodel
    net = proto.NetParameter()
    layer = net.layer.add(name="ip", type="InnerProduct")
    blob = layer.blobs.add()
    blob.shape.dim.append(1000)
    path = tmp_path / "m.caffemodel"
    raw = net.SerializeToString()
    # the blob's 1000 floats unpacked: field 5, wire type 5, one key byte each
    unpacked = b"".join(b"\x2d" + np.float32(i).tobytes() for i in range(1000))
    blob_bytes = blob.SerializeToString() + unpacked
    from caffe2onnx.wire import len_header
    layer_bytes = proto.LayerParameter(name="ip", type="InnerProduct").SerializeToString() \
        + len_header(7, len(blob_bytes)) + blob_bytes
    path.write_bytes(len_header(100, len(layer_bytes)) + layer_bytes)
    _, blobs = caffemodel.read_caffemodel(path)
    assert blobs[0][0].data.size == 1000 and raw
    monkeypatch.setattr(caffemodel, "MAX_DECODED_BYTES", 3999)
    with pytest.raises(ResourceLimitError, match="unpacked float blobs"):
        caffemodel.read_caffemodel(path)
    monkeypatch.setattr(caffemodel, "MAX_NET_BYTES", 8)
    with pytest.raises(ResourceLimitError, match="the net without its blobs"):
        caffemodel.read_caffemodel(path)
