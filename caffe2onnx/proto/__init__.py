"""Caffe protobuf messages (schema: caffe.proto in this folder).

The schema lives in a private DescriptorPool, not protobuf's default pool, so
it coexists with pycaffe's ``caffe_pb2`` (which registers ``caffe.*`` in the
default pool) in one process.  Messages use whatever backend protobuf picked
(upb/C++ when available).

    from caffe2onnx import proto
    net = proto.NetParameter()
    google.protobuf.text_format.Parse(text, net)
    blob_cls = proto.message_class("BlobProtoVector")
"""

from google.protobuf import descriptor_pool, message_factory

from .caffe_descriptor import SERIALIZED

__all__ = [
    "FILE_DESCRIPTOR", "POOL", "message_class", "TRAIN", "TEST",
    "NetParameter", "LayerParameter", "V1LayerParameter", "V0LayerParameter",
    "BlobProto", "BlobShape", "NetState", "NetStateRule", "ParamSpec",
]

POOL = descriptor_pool.DescriptorPool()
POOL.AddSerializedFile(SERIALIZED)  # the serialized FileDescriptorProto
FILE_DESCRIPTOR = POOL.FindFileByName("caffe.proto")

if hasattr(message_factory, "GetMessageClass"):
    _get_class = message_factory.GetMessageClass
else:  # pragma: no cover - protobuf < 4.21
    _get_class = message_factory.MessageFactory(POOL).GetPrototype

_classes = {}


def message_class(name: str):
    """Return the message class for a top-level message, e.g. ``"PoolingParameter"``."""
    cls = _classes.get(name)
    if cls is None:
        try:
            desc = FILE_DESCRIPTOR.message_types_by_name[name]
        except KeyError:
            raise KeyError("caffe.proto has no top-level message %r" % name) from None
        cls = _classes[name] = _get_class(desc)
    return cls


NetParameter = message_class("NetParameter")
LayerParameter = message_class("LayerParameter")
V1LayerParameter = message_class("V1LayerParameter")
V0LayerParameter = message_class("V0LayerParameter")
BlobProto = message_class("BlobProto")
BlobShape = message_class("BlobShape")
NetState = message_class("NetState")
NetStateRule = message_class("NetStateRule")
ParamSpec = message_class("ParamSpec")

# caffe.Phase values.
TRAIN = 0
TEST = 1
