"""Caffe protobuf messages (schema: caffe.proto in this folder).

The schema lives in a private DescriptorPool, not protobuf's default pool, so
it coexists with pycaffe's ``caffe_pb2`` (which registers ``caffe.*`` in the
default pool) in one process.  Messages use whatever backend protobuf picked
(upb/C++ when available).

    from caffe2onnx import proto
    net = proto.NetParameter()
    google.protobuf.text_format.Parse(text, net)
    blob_cls = proto.message_class("BlobProtoVector")

A user's own caffe.proto (a fork's schema) is compiled at run time into a
separate private pool: ``with proto.using("fork/caffe.proto"):`` makes the
parser read prototxt and caffemodel files with it (``current()``).
"""

import contextlib
import contextvars
import functools
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

from .caffe_descriptor import SERIALIZED

__all__ = [
    "FILE_DESCRIPTOR", "POOL", "message_class", "TRAIN", "TEST",
    "NetParameter", "LayerParameter", "V1LayerParameter", "V0LayerParameter",
    "BlobProto", "BlobShape", "NetState", "NetStateRule", "ParamSpec", "Schema", "current", "using",
    "compile_schema",
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


class Schema:
    """The message classes of one caffe.proto (ours, or a user's compiled at run time)."""

    def __init__(self, file_descriptor, source: str):
        self.file = file_descriptor
        self.source = source
        self._classes = {}

    def message_class(self, name: str):
        cls = self._classes.get(name)
        if cls is None:
            try:
                desc = self.file.message_types_by_name[name]
            except KeyError:
                raise KeyError(f"{self.source} has no top-level message {name!r}") from None
            cls = self._classes[name] = _get_class(desc)
        return cls

    def __getattr__(self, name: str):  # NetParameter, LayerParameter, V1LayerParameter, ...
        if name.startswith("_"):
            raise AttributeError(name)
        return self.message_class(name)


DEFAULT = Schema(FILE_DESCRIPTOR, "caffe2onnx's caffe.proto")
DEFAULT._classes = _classes
_current: contextvars.ContextVar[Schema] = contextvars.ContextVar("caffe2onnx_schema", default=DEFAULT)

# What the parser needs from any caffe.proto (a fork's schema is a superset of these).
_REQUIRED = {
    "NetParameter": ("name", "layer", "layers", "input", "input_shape", "input_dim", "state"),
    "LayerParameter": ("name", "type", "bottom", "top", "include", "exclude", "blobs", "input_param"),
    "BlobProto": ("data", "shape", "num", "channels", "height", "width"),
    "V1LayerParameter": ("name", "type", "bottom", "top", "blobs"),
}


def current() -> Schema:
    """The schema the parser reads with: ours, unless inside ``using(...)``."""
    return _current.get()


@contextlib.contextmanager
def using(caffe_proto):
    """Parse with the user's caffe.proto (a .proto file, or a FileDescriptorSet from protoc) inside."""
    if caffe_proto is None:
        yield current()
        return
    schema = compile_schema(str(Path(caffe_proto).resolve()))
    token = _current.set(schema)
    try:
        yield schema
    finally:
        _current.reset(token)


def _error(message: str):
    from ..errors import CaffeParseError
    return CaffeParseError(message)


def compile_schema(path: str) -> Schema:
    """A user's caffe.proto in its own private DescriptorPool (package ``caffe``, as BVLC's)."""
    from ..safe_io import MAX_PROTOTXT_BYTES, check_input_file
    mtime = check_input_file(path, "the caffe.proto", MAX_PROTOTXT_BYTES).st_mtime_ns  # never a FIFO or device
    return _compile(path, mtime)  # compiled once per file version


@functools.lru_cache(maxsize=8)
def _compile(path: str, mtime: int) -> Schema:
    from ..safe_io import MAX_PROTOTXT_BYTES, read_input_bytes
    data = read_input_bytes(path, "the caffe.proto", MAX_PROTOTXT_BYTES)
    fds = descriptor_pb2.FileDescriptorSet()
    if path.endswith((".pb", ".desc", ".protoset")):  # already compiled: protoc --descriptor_set_out
        try:
            fds.ParseFromString(data)
        except Exception as e:
            raise _error(f"{path}: not a FileDescriptorSet: {e}") from None
    else:
        fds.ParseFromString(_protoc(path))
    pool = descriptor_pool.DescriptorPool()
    try:
        for f in fds.file:  # dependencies first, as protoc --include_imports writes them
            pool.AddSerializedFile(f.SerializeToString())
        main = pool.FindMessageTypeByName("caffe.NetParameter").file
    except KeyError:
        raise _error(f"{path}: defines no message caffe.NetParameter (is it a Caffe schema with "
                     "'package caffe;'?)") from None
    except Exception as e:  # protobuf's descriptor errors have no common public base
        raise _error(f"{path}: protobuf rejects the schema: {e}") from None
    missing = [f"{m}.{f}" for m, fields in _REQUIRED.items()
               for f in fields if m not in main.message_types_by_name
               or f not in main.message_types_by_name[m].fields_by_name]
    if missing:
        raise _error(f"{path}: not a usable caffe.proto: lacks {len(missing)} field(s) Caffe's schema has "
                     f"({', '.join(missing[:5])}{', ...' if len(missing) > 5 else ''})")
    return Schema(main, path)


def _protoc(path: str) -> bytes:
    """Compiles a .proto with grpcio-tools' bundled protoc (a Python extension: no protoc binary)."""
    try:
        import grpc_tools  # noqa: F401
    except ImportError:
        raise _error(f"{path}: compiling a caffe.proto needs grpcio-tools (pip install 'caffe2onnx[caffe-proto]'), "
                     "or give a descriptor set made by protoc --include_imports --descriptor_set_out=caffe.pb") from None
    with tempfile.TemporaryDirectory(prefix="caffe2onnx-proto-") as tmp:
        out = os.path.join(tmp, "schema.pb")
        # -I: no module from the cwd or PYTHONPATH can stand in for grpc_tools
        cmd = [sys.executable, "-I", "-m", "grpc_tools.protoc", "--include_imports", f"--descriptor_set_out={out}",
               f"-I{os.path.dirname(path)}", path]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        if r.returncode != 0 or not os.path.exists(out):
            lines = [l for l in (r.stderr or r.stdout).strip().splitlines() if l.strip()]
            detail = lines[0] if lines else f"exit {r.returncode}"
            more = f" (+{len(lines) - 1} more)" if len(lines) > 1 else ""
            raise _error(f"{path}: caffe.proto does not compile: {detail}{more}")
        return Path(out).read_bytes()
