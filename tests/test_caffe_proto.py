"""--caffe-proto: a fork's caffe.proto compiled at run time reads a prototxt and a caffemodel
with the fork's extra layer parameter; the fork's layer type comes from a plugin (examples/plugin)."""
import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

import caffe2onnx
from caffe2onnx import plugins, proto
from caffe2onnx.cli import main
from caffe2onnx.errors import CaffeParseError, UnsupportedLayerError
from harness import ROOT

EXAMPLE = ROOT / "examples" / "plugin"
needs_protoc = pytest.mark.skipif(importlib.util.find_spec("grpc_tools") is None,
                                  reason="compiling a .proto needs grpcio-tools (the caffe-proto extra)")


def _fork_proto(tmp_path) -> Path:
    spec = importlib.util.spec_from_file_location("make_fork_proto", EXAMPLE / "make_fork_proto.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    path = tmp_path / "fork_caffe.proto"
    path.write_text(mod.fork_proto_text())
    return path


@pytest.fixture
def example_plugin(tmp_path, monkeypatch):
    """examples/plugin installed as pip would: its source on sys.path and a dist-info with its entry point."""
    site = tmp_path / "site"
    info = site / "caffe2onnx_scaledtanh-0.1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: caffe2onnx-scaledtanh\nVersion: 0.1.0\n")
    (info / "entry_points.txt").write_text("[caffe2onnx.layers]\nScaledTanh = scaledtanh_plugin:register\n")
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.syspath_prepend(str(EXAMPLE / "src"))
    with plugins.isolated():
        yield
    sys.modules.pop("scaledtanh_plugin", None)


@needs_protoc
def test_fork_field_parses_from_prototxt_and_caffemodel(tmp_path, example_plugin, capsys):
    fork = _fork_proto(tmp_path)
    net_path = EXAMPLE / "net.prototxt"
    with pytest.raises(CaffeParseError, match="scaled_tanh_param"):  # our schema does not know the field
        caffe2onnx.load(net_path, random_weights=0)
    net = caffe2onnx.load(net_path, random_weights=0, caffe_proto=fork)
    act = net.layer("act")
    assert (act.params.alpha, act.params.beta) == (pytest.approx(1.7159), pytest.approx(0.6667))
    # A caffemodel written with the fork's schema, holding the fork field: the caffemodel alone converts.
    from caffe2onnx.parser.text import read_prototxt
    with proto.using(fork):
        param = read_prototxt(net_path)  # the fork's NetParameter, as the fork's Caffe would save it
    for layer in param.layer:
        if layer.HasField("scaled_tanh_param"):
            layer.scaled_tanh_param.beta = 0.25
        for w in net.layer(layer.name).weights if layer.type != "Input" else ():
            blob = layer.blobs.add()
            blob.shape.dim.extend(w.shape)
            blob.data.extend(w.ravel().tolist())
    model = tmp_path / "fork.caffemodel"
    model.write_bytes(param.SerializeToString())
    alone = caffe2onnx.load(None, model, caffe_proto=fork)
    assert alone.layer("act").params.beta == pytest.approx(0.25)
    np.testing.assert_array_equal(alone.layer("conv").weights[0], net.layer("conv").weights[0])
    # The CLI: convert and validate with --caffe-proto (validation by the plugin's NumPy reference).
    out = tmp_path / "m.onnx"
    assert main(["convert", str(net_path), str(model), "--caffe-proto", str(fork), "-o", str(out), "-q",
                 "--validate"]) == 0
    assert main(["validate", str(net_path), str(model), str(out), "--caffe-proto", str(fork)]) == 0
    assert "numpy" in capsys.readouterr().out


@needs_protoc
def test_fork_type_without_plugin_says_so(tmp_path):
    fork = _fork_proto(tmp_path)
    with plugins.isolated():
        with pytest.raises(UnsupportedLayerError, match="'act' \\(type ScaledTanh\\): unknown layer type \\(a plugin can add it"):
            caffe2onnx.load(EXAMPLE / "net.prototxt", random_weights=0, caffe_proto=fork)


@needs_protoc
def test_bad_proto_is_one_line(tmp_path):
    bad = tmp_path / "caffe.proto"
    bad.write_text('syntax = "proto2";\npackage caffe;\nmessage NetParameter { optional strin name = 1; }\n')
    with pytest.raises(CaffeParseError) as e:
        caffe2onnx.load(EXAMPLE / "net.prototxt", caffe_proto=bad)
    assert "does not compile" in str(e.value) and "\n" not in str(e.value)
    small = tmp_path / "small.proto"
    small.write_text('syntax = "proto2";\npackage caffe;\nmessage NetParameter { optional string name = 1; }\n')
    with pytest.raises(CaffeParseError, match="not a usable caffe.proto"):
        caffe2onnx.load(EXAMPLE / "net.prototxt", caffe_proto=small)


def test_descriptor_set_needs_no_compiler(tmp_path, example_plugin):
    """A FileDescriptorSet (protoc --descriptor_set_out) is read with protobuf alone."""
    from google.protobuf import descriptor_pb2
    fds = descriptor_pb2.FileDescriptorSet()
    proto.FILE_DESCRIPTOR.CopyToProto(fds.file.add())
    layer = next(m for m in fds.file[0].message_type if m.name == "LayerParameter")
    layer.field.add(name="scaled_tanh_param", number=9001, label=1, type=11, type_name=".caffe.ScaledTanhParameter")
    msg = fds.file[0].message_type.add(name="ScaledTanhParameter")
    msg.field.add(name="alpha", number=1, label=1, type=2, default_value="1")
    msg.field.add(name="beta", number=2, label=1, type=2, default_value="1")
    pb = tmp_path / "fork.pb"
    pb.write_bytes(fds.SerializeToString())
    net = caffe2onnx.load(EXAMPLE / "net.prototxt", random_weights=0, caffe_proto=pb)
    assert net.layer("act").params.alpha == pytest.approx(1.7159)
    assert caffe2onnx.convert(EXAMPLE / "net.prototxt", random_weights=0, caffe_proto=pb, opset=11)


def test_missing_or_corrupt_schema_file(tmp_path):
    with pytest.raises(CaffeParseError, match="cannot read the caffe.proto"):
        caffe2onnx.load(EXAMPLE / "net.prototxt", caffe_proto=tmp_path / "absent.proto")
    bad = tmp_path / "bad.pb"
    bad.write_bytes(b"\xff\xff\xff")
    with pytest.raises(CaffeParseError, match="not a FileDescriptorSet"):
        caffe2onnx.load(EXAMPLE / "net.prototxt", caffe_proto=bad)


def test_caffe_proto_that_is_a_fifo_or_directory_is_refused_at_once(tmp_path):
    import os
    from caffe2onnx.errors import Caffe2OnnxError
    fifo = tmp_path / "caffe.proto"
    os.mkfifo(fifo)
    for bad in (fifo, tmp_path):
        with pytest.raises(Caffe2OnnxError, match="not a regular file"):
            proto.compile_schema(str(bad))
