"""The copy-speed writer (weight_io, safe_io, digest): page-aligned splices, the trailer written
after the weights, a durable rename, and the sources' hashes computed beside the conversion."""
import hashlib
import os

import numpy as np
import onnx
import pytest

import caffe2onnx
from caffe2onnx import safe_io
from caffe2onnx.caffemodel_writer import write_net_weights
from caffe2onnx.converter import build, convert_file
from caffe2onnx.digest import SourceDigests, sha256_file
from caffe2onnx.errors import InputFileError
from caffe2onnx.mapped import file_range
from caffe2onnx.model_info import describe, stamp
from caffe2onnx.weight_io import PAGE
from loader_util import write

# conv blob0 is 64*16*3*3 floats = 36 KiB (below the alignment threshold), ip blob0 1000*1024 = 4 MB
NET = ('layer { name: "in" type: "Input" top: "data" input_param { shape { dim: 1 dim: 16 dim: 8 dim: 8 } } }\n'
       'layer { name: "conv" type: "Convolution" bottom: "data" top: "conv" '
       'convolution_param { num_output: 64 kernel_size: 3 pad: 1 } }\n'
       'layer { name: "big" type: "Convolution" bottom: "conv" top: "big" '
       'convolution_param { num_output: 16 kernel_size: 3 pad: 1 } }\n'
       'layer { name: "ip" type: "InnerProduct" bottom: "big" top: "ip" inner_product_param { num_output: 1000 } }\n')


@pytest.fixture()
def model_files(tmp_path):
    prototxt = write(tmp_path, NET)
    caffemodel = tmp_path / "w.caffemodel"
    write_net_weights(caffemodel, caffe2onnx.load(prototxt, random_weights=3))
    return prototxt, caffemodel


def _raw_offsets(path, model):
    data = open(path, "rb").read()
    return {i.name: data.index(i.raw_data) for i in model.graph.initializer if len(i.raw_data) >= 64 << 10}


def test_spliced_weights_keep_their_page_offset_and_the_model_is_unchanged(tmp_path, model_files):
    prototxt, caffemodel = model_files
    net = caffe2onnx.load(prototxt, caffemodel)
    built = build(net)
    sources = {name: file_range(arr) for name, arr in built.weights}
    out = tmp_path / "m.onnx"
    built.save(out)
    written = onnx.load(out)
    offsets = _raw_offsets(out, written)
    assert "ip/blob0" in offsets
    for name, at in offsets.items():
        assert sources[name] is not None
        assert at % PAGE == sources[name][1] % PAGE, name
    padded = [i for i in written.graph.initializer if i.doc_string]
    assert padded and all(set(i.doc_string) == {" "} for i in padded)
    for i in written.graph.initializer:
        i.ClearField("doc_string")
    assert written == built.to_proto()


def test_trailer_makes_the_same_model_as_stamping_in_place(tmp_path, model_files):
    prototxt, caffemodel = model_files
    out = tmp_path / "m.onnx"
    net = convert_file(out, prototxt, caffemodel)
    written = onnx.load(out)
    expected = build(net).to_proto()
    stamp(expected, describe(net, prototxt=prototxt, caffemodel=caffemodel))
    assert hashlib.sha256(caffemodel.read_bytes()).hexdigest() in written.doc_string
    for i in written.graph.initializer:
        i.ClearField("doc_string")
    assert written == expected


def test_output_is_synced_before_it_takes_its_name(tmp_path, model_files, monkeypatch):
    prototxt, caffemodel = model_files
    events, real_sync, real_replace = [], os.fdatasync, os.replace
    monkeypatch.setattr(safe_io.os, "fdatasync", lambda fd: (events.append(("sync", os.readlink(
        f"/proc/self/fd/{fd}"))), real_sync(fd))[1])
    monkeypatch.setattr(safe_io.os, "replace", lambda a, b: (events.append(("rename", str(a))), real_replace(a, b))[1])
    convert_file(tmp_path / "m.onnx", prototxt, caffemodel)
    renames = [i for i, e in enumerate(events) if e[0] == "rename"]
    assert len(renames) == 1
    tmp = events[renames[0]][1]
    assert ("sync", tmp) in events[:renames[0]]


def test_digests_match_hashlib_and_large_files_hash_in_windows(tmp_path, monkeypatch):
    monkeypatch.setattr("caffe2onnx.digest._WINDOW", 4096)
    f = tmp_path / "blob"
    f.write_bytes(np.random.default_rng(0).bytes(3 * 4096 + 17))
    expected = hashlib.sha256(f.read_bytes()).hexdigest()
    assert sha256_file(f) == expected
    assert SourceDigests(f, None).get(f) == expected
    assert sha256_file(f, cancelled=lambda: True) is None
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    assert SourceDigests(empty).get(empty) == hashlib.sha256(b"").hexdigest()


def test_a_file_changed_while_hashed_is_an_input_error(tmp_path, monkeypatch):
    monkeypatch.setattr("caffe2onnx.digest._WINDOW", 4096)
    f = tmp_path / "w.caffemodel"
    f.write_bytes(bytes(3 * 4096))

    def grow():
        with open(f, "ab") as g:
            g.write(b"x")
        return False
    with pytest.raises(InputFileError, match="changed while it was being converted"):
        sha256_file(f, cancelled=grow)


def test_digest_errors_are_our_one_line_errors(tmp_path):
    missing = tmp_path / "gone.caffemodel"
    with pytest.raises(InputFileError, match="gone.caffemodel"):
        SourceDigests(missing).get(missing)


def test_leaving_the_digests_early_stops_the_hash(tmp_path, monkeypatch):
    windows = []
    real = __import__("caffe2onnx.digest", fromlist=["x"]).hashlib.sha256

    class Counting:
        def __init__(self):
            self.h = real()

        def update(self, data):
            windows.append(len(data))
            self.h.update(data)

        def hexdigest(self):
            return self.h.hexdigest()
    monkeypatch.setattr("caffe2onnx.digest._WINDOW", 4096)
    monkeypatch.setattr("caffe2onnx.digest.hashlib.sha256", Counting)
    f = tmp_path / "w.caffemodel"
    f.write_bytes(bytes(4096 * 20000))  # 80 MB in 20,000 windows
    with SourceDigests(f) as digests:
        pass
    digests._thread.join(timeout=30)
    assert not digests._thread.is_alive()
    assert len(windows) < 20000
    monkeypatch.undo()
    assert digests.get(f) == hashlib.sha256(f.read_bytes()).hexdigest()  # still right, computed on demand
