"""A caffemodel given as the net is read alone, in the phase Caffe saved its net in; a prototxt
given as the weights is refused in one line; a UTF-8 BOM is accepted."""
import numpy as np
import pytest
from google.protobuf import text_format

import caffe2onnx
from caffe2onnx import proto
from caffe2onnx.errors import CaffeParseError
from loader_util import write

# A solver snapshot holds the TRAIN net: Net::Init writes `phase: TRAIN` into every layer.
SAVED_TRAIN = '''name: "tiny"
layer { name: "data" type: "Data" top: "data" top: "label" include { phase: TRAIN } phase: TRAIN
  data_param { batch_size: 4 } transform_param { crop_size: 5 } }
layer { name: "conv" type: "Convolution" bottom: "data" top: "conv" phase: TRAIN
  convolution_param { num_output: 3 kernel_size: 3 } }
layer { name: "loss" type: "SoftmaxWithLoss" bottom: "conv" bottom: "label" top: "loss" phase: TRAIN }
'''


def _snapshot(tmp_path, text=SAVED_TRAIN, name="snap.caffemodel"):
    net = proto.NetParameter()
    text_format.Parse(text, net)
    conv = next(l for l in net.layer if l.name == "conv")
    w = conv.blobs.add()
    w.shape.dim.extend([3, 2, 3, 3])
    w.data.extend(np.arange(54, dtype=np.float32) / 54)
    b = conv.blobs.add()
    b.shape.dim.extend([3])
    b.data.extend([0.5, -0.5, 0.0])
    path = tmp_path / name
    path.write_bytes(net.SerializeToString())
    return path


@pytest.mark.parametrize("as_net", [False, True])
def test_caffemodel_alone_uses_its_saved_phase(tmp_path, as_net):
    path = _snapshot(tmp_path)
    net = caffe2onnx.load(path) if as_net else caffe2onnx.load(caffemodel=path)
    assert net.inputs == ("data",) and net.shape("data") == (4, 2, 5, 5)  # channels from conv's weights
    assert [l.name for l in net.layers] == ["conv"] and net.outputs == ("conv",)
    assert float(net.layer("conv").weights[1][0]) == 0.5
    assert caffe2onnx.load(path, phase="TRAIN").shape("conv") == (4, 3, 3, 3)


def test_caffemodel_alone_in_the_other_phase_is_refused(tmp_path):
    with pytest.raises(CaffeParseError, match="saved in phase TRAIN .*\\(phase TEST would drop layer 'data' "
                                              "\\(type Data\\)\\); omit the phase"):
        caffe2onnx.load(caffemodel=_snapshot(tmp_path), phase="TEST")


def test_phase_without_rules_may_differ(tmp_path):
    text = SAVED_TRAIN.replace("include { phase: TRAIN } ", "")
    net = caffe2onnx.load(caffemodel=_snapshot(tmp_path, text), phase="TEST")
    assert net.shape("conv") == (4, 3, 3, 3)


def test_caffemodel_as_net_with_weights_too_is_refused(tmp_path):
    snap = _snapshot(tmp_path)
    with pytest.raises(CaffeParseError, match="snap.caffemodel: this is a binary caffemodel, not a prototxt.*swapped"):
        caffe2onnx.load(snap, snap)


def test_prototxt_as_weights_is_refused_in_one_line(tmp_path):
    net = write(tmp_path, SAVED_TRAIN)
    with pytest.raises(CaffeParseError) as e:
        caffe2onnx.load(net, net)
    assert str(e.value) == (f"{net}: this is a text file (a prototxt?), not a binary caffemodel; give it as "
                            "the net, and the .caffemodel as the weights")


def test_binary_that_is_no_caffemodel_reports_as_a_prototxt(tmp_path):
    path = tmp_path / "junk.prototxt"
    path.write_bytes(b"\x00\x01\x02garbage")
    with pytest.raises(CaffeParseError, match="junk.prototxt: not a text prototxt: NUL byte at offset 0"):
        caffe2onnx.load(path)


def test_missing_files_are_reported_by_the_readers(tmp_path):
    with pytest.raises(CaffeParseError, match="cannot read prototxt"):
        caffe2onnx.load(tmp_path / "nope.prototxt")
    with pytest.raises(CaffeParseError, match="cannot read caffemodel"):
        caffe2onnx.load(caffemodel=tmp_path / "nope.caffemodel")


def test_utf8_bom_is_accepted(tmp_path):
    text = ('layer { name: "in" type: "Input" top: "data" input_param { shape { dim: 1 dim: 2 } } }\n'
            'layer { name: "r" type: "ReLU" bottom: "data" top: "r" }\n')
    path = tmp_path / "bom.prototxt"
    path.write_bytes(b"\xef\xbb\xbf" + text.encode())
    assert caffe2onnx.load(path).shape("r") == (1, 2)
