"""Upgrades of legacy net definitions to current Caffe form, as Caffe's upgrade_proto.cpp does."""
from __future__ import annotations

from .. import proto
from ..errors import CaffeParseError, ShapeError

# V1LayerParameter.LayerType name -> current type string (Caffe's UpgradeV1LayerType).
V1_TYPES = {
    "ABSVAL": "AbsVal", "ACCURACY": "Accuracy", "ARGMAX": "ArgMax", "BNLL": "BNLL",
    "CONCAT": "Concat", "CONTRASTIVE_LOSS": "ContrastiveLoss", "CONVOLUTION": "Convolution",
    "DECONVOLUTION": "Deconvolution", "DATA": "Data", "DROPOUT": "Dropout",
    "DUMMY_DATA": "DummyData", "EUCLIDEAN_LOSS": "EuclideanLoss", "ELTWISE": "Eltwise",
    "EXP": "Exp", "FLATTEN": "Flatten", "HDF5_DATA": "HDF5Data", "HDF5_OUTPUT": "HDF5Output",
    "HINGE_LOSS": "HingeLoss", "IM2COL": "Im2col", "IMAGE_DATA": "ImageData",
    "INFOGAIN_LOSS": "InfogainLoss", "INNER_PRODUCT": "InnerProduct", "LRN": "LRN",
    "MEMORY_DATA": "MemoryData", "MULTINOMIAL_LOGISTIC_LOSS": "MultinomialLogisticLoss",
    "MVN": "MVN", "POOLING": "Pooling", "POWER": "Power", "RELU": "ReLU", "SIGMOID": "Sigmoid",
    "SIGMOID_CROSS_ENTROPY_LOSS": "SigmoidCrossEntropyLoss", "SILENCE": "Silence",
    "SOFTMAX": "Softmax", "SOFTMAX_LOSS": "SoftmaxWithLoss", "SPLIT": "Split", "SLICE": "Slice",
    "TANH": "TanH", "WINDOW_DATA": "WindowData", "THRESHOLD": "Threshold",
}
_V1_ONLY = {"type", "blobs_lr", "weight_decay", "param", "blob_share_mode", "layer"}


def upgrade_net(net, source: str) -> None:
    """In place: V1 `layers` -> `layer`, legacy `input` fields -> an Input layer."""
    if len(net.layers):
        if len(net.layer):
            raise CaffeParseError(f"{source}: net mixes V1 'layers' and current 'layer' entries")
        _upgrade_v1(net, source)
    _upgrade_inputs(net, source)


def _upgrade_v1(net, source: str) -> None:
    enum = proto.current().V1LayerParameter.DESCRIPTOR.enum_types_by_name["LayerType"]
    for old in net.layers:
        if old.HasField("layer"):
            raise CaffeParseError(f"{source}: layer '{old.name or old.layer.name}' is in the V0 format "
                                  "(layers {{ layer {{ ... }} }}), which is not supported; "
                                  "upgrade it with Caffe's upgrade_net_proto_text first")
        new = net.layer.add()
        type_name = enum.values_by_number[old.type].name if old.type in enum.values_by_number else str(old.type)
        if type_name not in V1_TYPES:
            raise CaffeParseError(f"{source}: V1 layer '{old.name}' has unknown type {type_name}")
        new.type = V1_TYPES[type_name]
        for field, value in old.ListFields():
            if field.name in _V1_ONLY:
                continue
            target = getattr(new, field.name)
            if _repeated(field):
                target.extend(value) if field.cpp_type != field.CPPTYPE_MESSAGE else _extend(target, value)
            elif field.cpp_type == field.CPPTYPE_MESSAGE:
                target.CopyFrom(value)
            else:
                setattr(new, field.name, value)
        _upgrade_data_transformation(new)
        for i, name in enumerate(old.param):
            _param(new, i).name = name
        for i, lr in enumerate(old.blobs_lr):
            _param(new, i).lr_mult = lr
        for i, decay in enumerate(old.weight_decay):
            _param(new, i).decay_mult = decay
    del net.layers[:]


_TRANSFORM_OWNERS = {"Data": "data_param", "ImageData": "image_data_param", "WindowData": "window_data_param"}


def _upgrade_data_transformation(layer) -> None:
    """UpgradeNetDataTransformation: V1 data layers kept scale/mean_file/crop_size/mirror in
    their own parameter; Caffe moves them to transform_param (current layers are not upgraded)."""
    if layer.type not in _TRANSFORM_OWNERS:
        return
    own = getattr(layer, _TRANSFORM_OWNERS[layer.type])
    for field in ("scale", "mean_file", "crop_size", "mirror"):
        if own.HasField(field):
            setattr(layer.transform_param, field, getattr(own, field))
            own.ClearField(field)


def _repeated(field) -> bool:
    # protobuf 7 dropped FieldDescriptor.label in favour of is_repeated.
    return field.is_repeated if hasattr(field, "is_repeated") else field.label == field.LABEL_REPEATED


def _extend(target, values) -> None:
    for v in values:
        target.add().CopyFrom(v)


def _param(layer, i: int):
    while len(layer.param) <= i:
        layer.param.add()
    return layer.param[i]


def _upgrade_inputs(net, source: str) -> None:
    if not len(net.input):
        if len(net.input_dim) or len(net.input_shape):
            raise CaffeParseError(f"{source}: input_dim/input_shape given without 'input' names")
        return
    names = list(net.input)
    if len(net.input_dim) and len(net.input_shape):
        raise CaffeParseError(f"{source}: give input_dim or input_shape, not both")
    layer = proto.current().LayerParameter(name="input", type="Input")
    layer.top.extend(names)
    if len(net.input_shape):
        if len(net.input_shape) != len(names):
            raise CaffeParseError(f"{source}: {len(net.input_shape)} input_shape entries for {len(names)} inputs")
        for s in net.input_shape:
            layer.input_param.shape.add().CopyFrom(s)
    elif len(net.input_dim):
        dims = list(net.input_dim)
        if len(dims) != 4 * len(names):
            raise CaffeParseError(f"{source}: {len(dims)} input_dim values for {len(names)} inputs "
                                  "(Caffe needs exactly 4 per input)")
        for i in range(len(names)):
            layer.input_param.shape.add().dim.extend(dims[4 * i:4 * i + 4])
    # else: shapeless inputs; the caller must supply their shapes.
    layers = [layer] + [l for l in net.layer]
    del net.layer[:]
    for l in layers:
        net.layer.add().CopyFrom(l)
    del net.input[:], net.input_dim[:], net.input_shape[:]


def check_dims(name: str, shape, what: str = "input") -> tuple[int, ...]:
    """Rejects non-positive dims and blobs Caffe could not hold (count > INT_MAX)."""
    shape = tuple(int(d) for d in shape)
    if not shape and what == "input":  # a 0-axis blob (Reduction over all axes) is a scalar
        raise ShapeError(f"{what} '{name}' has an empty shape")
    if any(d <= 0 for d in shape):
        raise ShapeError(f"{what} '{name}' has non-positive dimension(s): {list(shape)}")
    n = 1
    for d in shape:
        n *= d
    if n > 2**31 - 1:
        raise ShapeError(f"{what} '{name}' of shape {list(shape)} has {n} elements, more than Caffe's "
                         f"limit of 2^31-1 (INT_MAX)")
    return shape
