"""Tests for caffe2onnx.proto: our own Caffe schema in a private descriptor pool."""

import importlib.util
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from google.protobuf import descriptor_pb2, text_format
from google.protobuf.internal import api_implementation

from caffe2onnx import proto

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT.parent / "shared" / "corpus"
NO_CORPUS = "shared corpus not found at %s (fresh checkout)" % CORPUS


def parse(text, cls=proto.NetParameter):
    return text_format.Parse(textwrap.dedent(text), cls())


def import_caffe_pb2():
    os.environ.setdefault("GLOG_minloglevel", "2")
    try:
        import caffe  # noqa: F401  (pycaffe; registers caffe.* in the default pool)
        from caffe.proto import caffe_pb2
    except Exception as exc:  # ImportError, or a broken native build
        pytest.skip("real Caffe (pycaffe) not importable: %s" % exc)
    return caffe_pb2


# --------------------------------------------------------------------------
# (a) text format parsing
# --------------------------------------------------------------------------

def test_round_mode_floor():
    net = parse("""
        layer { name: "p" type: "Pooling" bottom: "x" top: "y"
                pooling_param { pool: MAX kernel_size: 3 stride: 2 round_mode: FLOOR } }
    """)
    p = net.layer[0].pooling_param
    assert p.round_mode == proto.message_class("PoolingParameter").FLOOR == 1
    assert not p.HasField("ceil_mode")


def test_ceil_mode_false_fork_syntax():
    net = parse("""
        layer { name: "p" type: "Pooling" bottom: "x" top: "y"
                pooling_param { pool: AVE kernel_size: 3 stride: 2 ceil_mode: false } }
    """)
    p = net.layer[0].pooling_param
    assert p.HasField("ceil_mode") and p.ceil_mode is False
    assert not p.HasField("round_mode")
    # Defaults: both spellings round up.
    q = proto.message_class("PoolingParameter")()
    assert q.round_mode == q.CEIL and q.ceil_mode is True


def test_v1_layers():
    net = parse("""
        name: "v1"
        layers { name: "conv1" type: CONVOLUTION bottom: "data" top: "conv1"
                 blobs_lr: 1 blobs_lr: 2 weight_decay: 1 weight_decay: 0
                 convolution_param { num_output: 20 kernel_size: 5 stride: 1 } }
        layers { name: "t" type: TANH bottom: "conv1" top: "conv1"
                 include { phase: TEST } }
    """)
    assert len(net.layers) == 2 and len(net.layer) == 0
    conv = net.layers[0]
    assert conv.type == proto.V1LayerParameter.CONVOLUTION == 4
    assert list(conv.blobs_lr) == [1, 2] and list(conv.weight_decay) == [1, 0]
    assert conv.convolution_param.num_output == 20
    assert list(conv.convolution_param.kernel_size) == [5]
    assert net.layers[1].type == proto.V1LayerParameter.TANH
    assert net.layers[1].include[0].phase == proto.TEST


def test_v0_layer_nested_in_v1():
    net = parse("""
        layers { layer { name: "conv1" type: "conv" num_output: 96 kernelsize: 11 stride: 4 } }
    """)
    v0 = net.layers[0].layer
    assert isinstance(v0, proto.V0LayerParameter)
    assert (v0.num_output, v0.kernelsize, v0.stride, v0.biasterm) == (96, 11, 4, True)


def test_legacy_input_dim():
    net = parse("""
        name: "legacy"
        input: "data"
        input_dim: 10 input_dim: 3 input_dim: 227 input_dim: 227
        layer { name: "relu" type: "ReLU" bottom: "data" top: "data" }
    """)
    assert list(net.input) == ["data"]
    assert list(net.input_dim) == [10, 3, 227, 227]
    assert len(net.input_shape) == 0


def test_input_shape_and_defaults():
    net = parse('input: "data" input_shape { dim: 1 dim: 3 dim: 8 dim: 8 }')
    assert isinstance(net.input_shape[0], proto.BlobShape)
    assert list(net.input_shape[0].dim) == [1, 3, 8, 8]
    layer = proto.LayerParameter()
    conv = layer.convolution_param
    assert (conv.bias_term, conv.group, conv.axis) == (True, 1, 1)
    assert layer.batch_norm_param.eps == pytest.approx(1e-5)
    assert layer.lrn_param.beta == pytest.approx(0.75)
    assert proto.NetState().phase == proto.TEST
    assert (proto.TRAIN, proto.TEST) == (0, 1)
    assert proto.ParamSpec().lr_mult == 1.0


def test_ssd_layers():
    net = parse("""
        layer { name: "perm" type: "Permute" permute_param { order: 0 order: 2 order: 3 order: 1 } }
        layer { name: "pb" type: "PriorBox"
                prior_box_param { min_size: 60 max_size: 150 aspect_ratio: 2 flip: true
                                  clip: false variance: 0.1 variance: 0.2 offset: 0.5 } }
        layer { name: "det" type: "DetectionOutput"
                detection_output_param { num_classes: 21 share_location: true
                  nms_param { nms_threshold: 0.45 top_k: 100 }
                  code_type: CENTER_SIZE keep_top_k: 100 confidence_threshold: 0.25 } }
        layer { name: "n" type: "Normalize" norm_param { across_spatial: false
                scale_filler { type: "constant" value: 20 } channel_shared: false } }
        layer { name: "u" type: "Upsample" upsample_param { scale: 2 } }
        layer { name: "r6" type: "ReLU6" relu6_param { threshold: 6 } }
    """)
    assert list(net.layer[0].permute_param.order) == [0, 2, 3, 1]
    det = net.layer[2].detection_output_param
    assert det.code_type == proto.message_class("PriorBoxParameter").CENTER_SIZE
    assert det.nms_param.top_k == 100
    assert net.layer[3].norm_param.scale_filler.value == 20
    assert net.layer[4].upsample_param.scale == 2


def test_message_class_lookup():
    assert proto.message_class("NetParameter") is proto.NetParameter
    assert proto.message_class("BlobProtoVector")().DESCRIPTOR.full_name == "caffe.BlobProtoVector"
    with pytest.raises(KeyError):
        proto.message_class("NoSuchParameter")
    assert proto.FILE_DESCRIPTOR.package == "caffe"
    assert proto.NetParameter.DESCRIPTOR.file is proto.FILE_DESCRIPTOR


# --------------------------------------------------------------------------
# (b) coexistence with pycaffe in one process
# --------------------------------------------------------------------------

COEXIST_NET = """
name: "coexist"
input: "data"
input_shape { dim: 1 dim: 3 dim: 32 dim: 32 }
layer { name: "conv1" type: "Convolution" bottom: "data" top: "conv1"
        param { lr_mult: 1 decay_mult: 1 } param { lr_mult: 2 decay_mult: 0 }
        convolution_param { num_output: 8 kernel_size: 3 pad: 1 stride: 1
                            weight_filler { type: "xavier" } } }
layer { name: "bn1" type: "BatchNorm" bottom: "conv1" top: "conv1"
        batch_norm_param { use_global_stats: true eps: 0.001 } }
layer { name: "relu1" type: "ReLU" bottom: "conv1" top: "conv1" relu_param { negative_slope: 0.1 } }
layer { name: "pool1" type: "Pooling" bottom: "conv1" top: "pool1"
        pooling_param { pool: MAX kernel_size: 2 stride: 2 } }
layer { name: "fc" type: "InnerProduct" bottom: "pool1" top: "fc"
        inner_product_param { num_output: 10 }
        include { phase: TEST stage: "deploy" } }
layer { name: "prob" type: "Softmax" bottom: "fc" top: "prob" }
layers { name: "old" type: INNER_PRODUCT bottom: "x" top: "y" blobs_lr: 1 }
"""


def test_coexists_with_pycaffe():
    caffe_pb2 = import_caffe_pb2()
    ours = text_format.Parse(COEXIST_NET, proto.NetParameter())
    theirs = text_format.Parse(COEXIST_NET, caffe_pb2.NetParameter())
    assert ours.DESCRIPTOR is not theirs.DESCRIPTOR
    assert ours.DESCRIPTOR.full_name == theirs.DESCRIPTOR.full_name == "caffe.NetParameter"
    assert ours.SerializeToString(deterministic=True) == theirs.SerializeToString(deterministic=True)
    # And each side decodes the other's bytes to the same text.
    back = proto.NetParameter.FromString(theirs.SerializeToString())
    assert text_format.MessageToString(back) == text_format.MessageToString(ours)


def test_coexists_when_caffe_imported_first():
    import_caffe_pb2()  # skips when pycaffe is missing
    code = textwrap.dedent("""
        import os
        os.environ["GLOG_minloglevel"] = "2"
        from caffe.proto import caffe_pb2
        from caffe2onnx import proto
        from google.protobuf import text_format
        t = 'layer { name: "a" type: "Pooling" pooling_param { ceil_mode: false } }'
        theirs = text_format.Parse(t, caffe_pb2.NetParameter())
        ours = text_format.Parse(t, proto.NetParameter())
        assert ours.layer[0].pooling_param.ceil_mode is False
        assert theirs.layer[0].pooling_param.ceil_mode is False
        print("ok")
    """)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    res = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0 and res.stdout.strip() == "ok", res.stderr


# --------------------------------------------------------------------------
# (c) binary round trip, fast backend
# --------------------------------------------------------------------------

def test_backend_is_native():
    assert api_implementation.Type() in ("upb", "cpp"), (
        "protobuf uses the %r backend; large caffemodels will be very slow" % api_implementation.Type())


def test_binary_round_trip_large_blob():
    rng = np.random.default_rng(0)
    values = rng.standard_normal(10**6).astype(np.float32)
    net = proto.NetParameter(name="big")
    layer = net.layer.add(name="fc", type="InnerProduct")
    blob = layer.blobs.add()
    blob.shape.dim.extend([1000, 1000])
    blob.data.extend(values.tolist())
    data = net.SerializeToString()
    assert len(data) > 4 * 10**6

    back = proto.NetParameter.FromString(data)
    assert api_implementation.Type() in ("upb", "cpp")
    got = back.layer[0].blobs[0]
    assert list(got.shape.dim) == [1000, 1000]
    np.testing.assert_array_equal(np.asarray(got.data, dtype=np.float32), values)
    assert back == net


def test_legacy_blob_dims_binary():
    blob = proto.BlobProto(num=2, channels=3, height=4, width=5, double_data=[1.5, -2.25])
    back = proto.BlobProto.FromString(blob.SerializeToString())
    assert (back.num, back.channels, back.height, back.width) == (2, 3, 4, 5)
    assert list(back.double_data) == [1.5, -2.25] and not back.HasField("shape")


def test_fork_ceil_mode_on_wire_decodes_as_round_mode():
    """A fork's binary `ceil_mode = 13` lands in round_mode, meaning inverted."""
    fork_true = bytes([13 << 3 | 0, 1])   # field 13, varint 1 (fork: ceil_mode true)
    p = proto.message_class("PoolingParameter").FromString(fork_true)
    assert p.HasField("round_mode") and p.round_mode == p.FLOOR
    assert not p.HasField("ceil_mode")


# --------------------------------------------------------------------------
# (d) the shared corpus
# --------------------------------------------------------------------------

def corpus_files(pattern):
    if not CORPUS.is_dir():
        return [pytest.param(None, marks=pytest.mark.skip(reason=NO_CORPUS), id="no-corpus")]
    files = sorted(CORPUS.rglob(pattern))
    return [pytest.param(f, id=str(f.relative_to(CORPUS))) for f in files]


def fill_template(text):
    # MobileNet-SSD's template uses clsNx placeholders (N x number of classes)
    # that its gen_model.sh substitutes; use the 21 VOC classes.
    return re.sub(r"\bcls(\d+)x\b", lambda m: str(int(m.group(1)) * 21), text)


@pytest.mark.parametrize("path", corpus_files("*.prototxt"))
def test_corpus_prototxt_parses(path):
    text = path.read_text(encoding="utf-8")
    if "template" in path.parts:
        text = fill_template(text)
    net = text_format.Parse(text, proto.NetParameter())
    assert len(net.layer) + len(net.layers) > 0


@pytest.mark.parametrize("path", corpus_files("*.caffemodel"))
def test_corpus_caffemodel_parses(path):
    net = proto.NetParameter.FromString(path.read_bytes())
    blobs = [b for layer in list(net.layer) + list(net.layers) for b in layer.blobs]
    assert blobs and all(len(b.data) or len(b.double_data) for b in blobs)


# --------------------------------------------------------------------------
# (e) field numbers agree with real Caffe and with BVLC's schema
# --------------------------------------------------------------------------

def _messages(file_desc):
    out = {}

    def walk(desc):
        out[desc.full_name] = desc
        for nested in desc.nested_types:
            walk(nested)

    for desc in file_desc.message_types_by_name.values():
        walk(desc)
    return out


# (message, field name) pairs allowed to differ: our text-only ceil_mode alias
# (1013) vs the forks' ceil_mode on 13, where BVLC has round_mode.
ALLOWED = {("caffe.PoolingParameter", "ceil_mode")}


def _label(field):
    # protobuf >= 6 has is_repeated/is_required; 7 dropped FieldDescriptor.label.
    if hasattr(field, "is_repeated"):
        return "repeated" if field.is_repeated else "required" if field.is_required else "optional"
    return {field.LABEL_OPTIONAL: "optional", field.LABEL_REQUIRED: "required",
            field.LABEL_REPEATED: "repeated"}[field.label]


def _mismatches(ours_file, other_file, compare_defaults=False):
    ours, other = _messages(ours_file), _messages(other_file)
    problems = []
    for name in sorted(set(ours) & set(other)):
        a, b = ours[name], other[name]
        for fname, fa in a.fields_by_name.items():
            fb = b.fields_by_name.get(fname)
            if fb is None or (name, fname) in ALLOWED:
                continue
            if (fa.number, fa.type, _label(fa)) != (fb.number, fb.type, _label(fb)):
                problems.append("%s.%s: ours %s %d = %d, theirs %s %d = %d" % (
                    name, fname, _label(fa), fa.type, fa.number, _label(fb), fb.type, fb.number))
            elif compare_defaults and fa.has_default_value != fb.has_default_value:
                problems.append("%s.%s: default present %s vs %s" % (name, fname, fa.has_default_value,
                                                                        fb.has_default_value))
            elif compare_defaults and fa.default_value != fb.default_value:
                problems.append("%s.%s: default %r vs %r" % (name, fname, fa.default_value, fb.default_value))
        for ename, ea in a.enum_types_by_name.items():
            eb = b.enum_types_by_name.get(ename)
            if eb is None:
                continue
            for vname, va in ea.values_by_name.items():
                vb = eb.values_by_name.get(vname)
                if vb is not None and vb.number != va.number:
                    problems.append("%s.%s.%s: %d vs %d" % (name, ename, vname, va.number, vb.number))
    return problems


def test_field_numbers_match_real_caffe():
    caffe_pb2 = import_caffe_pb2()
    problems = _mismatches(proto.FILE_DESCRIPTOR, caffe_pb2.DESCRIPTOR)
    assert not problems, "schema differs from real Caffe:\n" + "\n".join(problems)


def test_covers_real_caffe_layer_parameters():
    caffe_pb2 = import_caffe_pb2()
    missing = sorted(set(caffe_pb2.LayerParameter.DESCRIPTOR.fields_by_name)
                     - set(proto.LayerParameter.DESCRIPTOR.fields_by_name))
    assert not missing, "LayerParameter fields of real Caffe missing here: %s" % missing


def _compile(proto_path):
    """Compile a .proto with grpc_tools (dev dependency) into a private pool."""
    if importlib.util.find_spec("grpc_tools") is None:
        pytest.skip("grpcio-tools (dev dependency) not installed")
    from google.protobuf import descriptor_pool
    from grpc_tools import protoc

    out = Path(os.environ.get("TMPDIR", "/tmp")) / ("caffe2onnx_test_%d.pb" % os.getpid())
    try:
        rc = protoc.main(["protoc", "--descriptor_set_out=%s" % out,
                          "-I", str(proto_path.parent), str(proto_path)])
        assert rc == 0, "protoc failed on %s" % proto_path
        fds = descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes())
    finally:
        if out.exists():
            out.unlink()
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fds.file[0])
    return pool.FindFileByName(fds.file[0].name), fds.file[0]


def test_field_numbers_and_defaults_match_bvlc():
    reference = CORPUS / "reference" / "caffe.proto"
    if not reference.is_file():
        pytest.skip(NO_CORPUS)
    bvlc, _ = _compile(reference)
    problems = _mismatches(proto.FILE_DESCRIPTOR, bvlc, compare_defaults=True)
    assert not problems, "schema differs from BVLC master:\n" + "\n".join(problems)
    # Every BVLC field of the messages we carry is present.
    ours = _messages(proto.FILE_DESCRIPTOR)
    missing = ["%s.%s" % (name, f) for name, desc in _messages(bvlc).items() if name in ours
               for f in desc.fields_by_name if f not in ours[name].fields_by_name]
    assert not missing, missing


def test_generated_descriptor_is_up_to_date():
    _, compiled = _compile(ROOT / "caffe2onnx" / "proto" / "caffe.proto")
    from caffe2onnx.proto.caffe_descriptor import SERIALIZED
    assert descriptor_pb2.FileDescriptorProto.FromString(SERIALIZED) == compiled, (
        "caffe_descriptor.py is stale: run python scripts/regen_proto.py")
