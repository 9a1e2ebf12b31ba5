"""Data layers as graph inputs, with the shapes the layers state for their tops.

Caffe's data layers set their top shapes up from the data they read (BVLC
src/caffe/layers/{data,image_data,window_data,hdf5_data,memory_data,dummy_data}_layer.cpp,
data_transformer.cpp; the SSD fork's annotated_data_layer.cpp and video_data_layer.cpp,
weiliu89/caffe branch ssd). Without that data we know what the layer parameters fix
(batch_size, crop sizes, resize sizes, colour), the channels a trained first
convolution expects, and what the user gives; the rest is an error naming the input.
A ``Python`` layer is a data layer only when it has no bottoms; its module is never imported.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

from ..errors import NetStructureError
from ..ir import Shape

DATA_LAYERS = frozenset({
    "Data", "ImageData", "HDF5Data", "WindowData", "MemoryData", "DummyData", "AnnotatedData",
    "VideoData", "DenseImageData",
})
_WARP, _FIT_SMALL_SIZE, _FIT_LARGE_SIZE_AND_PAD = 1, 2, 3  # OldResizeParameter.Resize_mode


def is_data_layer(layer) -> bool:
    """A layer that feeds the net from outside: its tops become graph inputs."""
    return layer.type in DATA_LAYERS or (layer.type == "Python" and not len(layer.bottom))


@dataclass(frozen=True)
class Stated:
    """What a data layer fixes of one top's shape: ``dims`` has None where the data decides,
    and is None itself when even the rank comes from the data (HDF5, Python)."""

    layer: str
    type: str
    dims: tuple[int | None, ...] | None
    known: tuple[str, ...] = ()  # where each known part comes from, for messages
    batch: int | None = None  # when dims is None but the layer fixes the batch (HDF5Data)


def stated_shapes(layer) -> dict[str, Stated]:
    """The shape every top of a data layer has, as far as the layer's parameters say."""
    tops = _STATED.get(layer.type, _unknown)(layer)
    return {top: Stated(layer.name, layer.type, *t) for top, t in zip(layer.top, tops)}


def _unknown(layer):
    return [(None, ())] * len(layer.top)  # Python data layers: only their module knows


def _positive(value: int) -> int | None:
    return int(value) if value > 0 else None


def _spatial(tp, height: int | None, width: int | None, known: list[str]) -> tuple[int | None, int | None]:
    """DataTransformer::InferBlobShape: resize_param (SSD fork) then crop_size or crop_h/crop_w."""
    if tp.HasField("resize_param"):
        r = tp.resize_param
        if r.resize_mode in (_WARP, _FIT_LARGE_SIZE_AND_PAD):
            height, width = _positive(r.height), _positive(r.width)
            if height and width:
                known.append(f"{height}x{width} from transform_param.resize_param")
        else:  # FIT_SMALL_SIZE keeps the image's aspect ratio: the image decides
            height = width = None
    crop_h, crop_w = _positive(tp.crop_h), _positive(tp.crop_w)
    if tp.crop_size:
        crop_h = crop_w = int(tp.crop_size)
        known.append(f"{crop_h}x{crop_w} from transform_param.crop_size")
    elif crop_h and crop_w:
        known.append(f"{crop_h}x{crop_w} from transform_param.crop_h/crop_w")
    return crop_h or height, crop_w or width


def _mean_channels(tp, known: list[str]) -> int | None:
    """DataTransformer checks mean_value has 1 entry or one per channel: several fix the channels."""
    n = len(tp.mean_value)
    if n > 1:
        known.append(f"{n} channels from transform_param.mean_value")
        return n
    return None


def _batch(value: int, field: str, known: list[str]) -> int | None:
    if value > 0:
        known.append(f"batch {value} from {field}")
        return int(value)
    return None


def _label(batch: int | None, known: list[str]):
    return ((batch,), tuple(k for k in known if k.startswith("batch ")))  # labels: (batch,)


def _image_tops(layer, batch: int | None, channels: int | None, height, width, known: list[str]):
    h, w = _spatial(layer.transform_param, height, width, known)
    return [((batch, channels, h, w), tuple(known)), _label(batch, known)][:len(layer.top)]


def _data(layer):
    known: list[str] = []  # channels, and the size without a crop, are the datum's
    batch = _batch(layer.data_param.batch_size, "data_param.batch_size", known)
    channels = _mean_channels(layer.transform_param, known)
    tops = _image_tops(layer, batch, channels, None, None, known)
    if layer.type == "AnnotatedData" and len(tops) > 1:
        tops[1] = (None, ())  # boxes: (1, 1, boxes in the datum, 8)
    return tops


def _image_data(layer):
    p = layer.image_data_param
    known: list[str] = []
    batch = _batch(p.batch_size, "image_data_param.batch_size", known)
    channels = 3 if p.is_color else 1  # ReadImageToCVMat decodes in colour or grey
    known.append(f"{channels} channel(s) from image_data_param.is_color")
    height, width = _positive(p.new_height), _positive(p.new_width)
    if bool(height) != bool(width):  # ImageDataLayer::DataLayerSetUp's CHECK
        raise NetStructureError(f"layer '{layer.name}' (type ImageData): set image_data_param new_height and "
                                "new_width together")
    if height and width:
        known.append(f"{height}x{width} from image_data_param.new_height/new_width")
    return _image_tops(layer, batch, channels, height, width, known)


def _dense_image_data(layer):
    # alexgkendall/caffe-segnet's image + label pair reader. Only the batch and the colour
    # decode are certain from the parameters; the frame size is left to --input-shape.
    p = layer.dense_image_data_param
    known: list[str] = []
    batch = _batch(p.batch_size, "dense_image_data_param.batch_size", known)
    channels = 3 if p.is_color else 1
    known.append(f"{channels} channel(s) from dense_image_data_param.is_color")
    return _image_tops(layer, batch, channels, None, None, known)


def _window_data(layer):
    known: list[str] = []
    batch = _batch(layer.window_data_param.batch_size, "window_data_param.batch_size", known)
    channels = _mean_channels(layer.transform_param, known)
    crop = _positive(layer.transform_param.crop_size)  # WindowDataLayer warps every window to it
    if crop:
        known.append(f"{crop}x{crop} from transform_param.crop_size")
    return [((batch, channels, crop, crop), tuple(known)), _label(batch, known)][:len(layer.top)]


def _hdf5_data(layer):
    known: list[str] = []  # every axis but the batch is the file's, the rank too
    batch = _batch(layer.hdf5_data_param.batch_size, "hdf5_data_param.batch_size", known)
    return [(None, tuple(known), batch)] * len(layer.top)


def _memory_data(layer):
    p = layer.memory_data_param
    dims = (int(p.batch_size), int(p.channels), int(p.height), int(p.width))
    if not all(dims):  # MemoryDataLayer::DataLayerSetUp's CHECK_GT(batch_size_ * size_, 0)
        raise NetStructureError(f"layer '{layer.name}' (type MemoryData): memory_data_param batch_size, "
                                f"channels, height and width must all be positive, got {list(dims)}")
    known = ("memory_data_param",)
    return [(dims, known), ((dims[0], 1, 1, 1), known)][:len(layer.top)]  # as Forward leaves the label


def _dummy_data(layer):
    p, n_top = layer.dummy_data_param, len(layer.top)
    head = f"layer '{layer.name}' (type DummyData)"
    legacy = {"num": list(p.num), "channels": list(p.channels), "height": list(p.height), "width": list(p.width)}
    if any(legacy.values()):
        if len(p.shape):
            raise NetStructureError(f"{head}: both shape and legacy num/channels/height/width given")
        for field, values in legacy.items():
            if len(values) not in (1, n_top):
                raise NetStructureError(f"{head}: give '{field}' once or once per top ({n_top}), not "
                                        f"{len(values)} times")
        pick = {f: (v * n_top if len(v) == 1 else v) for f, v in legacy.items()}
        shapes = [tuple(int(pick[f][i]) for f in ("num", "channels", "height", "width")) for i in range(n_top)]
    else:
        if len(p.shape) not in (1, n_top):
            raise NetStructureError(f"{head}: give 'shape' once or once per top ({n_top}), not {len(p.shape)} times")
        shapes = [tuple(int(d) for d in p.shape[0 if len(p.shape) == 1 else i].dim) for i in range(n_top)]
    return [(s, ("dummy_data_param",)) for s in shapes]


_STATED = {
    "Data": _data, "AnnotatedData": _data, "VideoData": _data, "ImageData": _image_data,
    "WindowData": _window_data, "HDF5Data": _hdf5_data, "MemoryData": _memory_data,
    "DummyData": _dummy_data, "DenseImageData": _dense_image_data,
}


def channels_from_weights(reader, blobs) -> int | None:
    """Input channels a trained (De)Convolution that reads the data top directly expects."""
    if reader is None or not blobs or reader.type not in ("Convolution", "Deconvolution"):
        return None
    cp = reader.convolution_param
    if cp.axis != 1:
        return None
    first = blobs[0]
    shape = first.legacy if first.legacy is not None else first.shape
    if not shape or len(shape) < 2:
        return None
    if reader.type == "Convolution":  # weights: (num_output, channels / group, k...)
        return int(shape[1]) * max(int(cp.group), 1)
    return int(shape[0])  # Deconvolution weights: (channels, num_output / group, k...)


def data_input_shapes(data_layers: Sequence, inputs: Sequence[str], readers: Mapping[str, object],
                      weights: Mapping[str, list] | None, given: Mapping[str, Sequence[int]]
                      ) -> tuple[dict[str, Shape], dict[str, tuple[str, str]]]:
    """Shapes of the data tops that are net inputs; for those still unknown, (why, example shape).

    ``readers`` maps a top to the first kept layer reading it; ``given`` wins over everything.
    """
    stated: dict[str, Stated] = {}
    for layer in data_layers:
        for top, s in stated_shapes(layer).items():
            if top in stated:
                raise NetStructureError(f"top blob '{top}' of layer '{layer.name}' (type {layer.type}) is "
                                        f"produced by multiple sources (also layer '{stated[top].layer}')")
            stated[top] = s
    shapes: dict[str, Shape] = {}
    missing: dict[str, tuple[str, str]] = {}
    for top in inputs:
        if top in given or top not in stated:
            continue
        s = stated[top]
        dims = list(s.dims) if s.dims is not None else None
        known = list(s.known)
        reader = readers.get(top)
        if dims is not None and len(dims) == 4 and dims[1] is None and weights is not None:
            c = channels_from_weights(reader, weights.get(reader.name) if reader is not None else None)
            if c:
                dims[1] = c
                known.append(f"{c} channel(s) from the weights of layer '{reader.name}'")
        if dims is not None and all(d is not None for d in dims):
            shapes[top] = tuple(dims)
            continue
        missing[top] = (_why(s, dims, known), _example(dims, s.batch))
    return shapes, missing


def _why(s: Stated, dims, known: list[str]) -> str:
    what = f"top of {s.type} layer '{s.layer}'"
    if s.type == "Python":
        return f"{what}, whose module is never run: the layer states no shape"
    stated = ", ".join(known) if known else "the layer states no shape"
    if dims is not None and len(dims) == 4:
        rest = "the " + ", ".join(n for n, d in zip(("batch", "channels", "height", "width"), dims) if d is None)
    else:
        rest = "its shape"
    return f"{what}: {stated}; the data it reads decides {rest}"


def _example(dims, batch: int | None) -> str:
    """``64,C,H,W``: the dims a data layer fixes, letters for the rest (a hint in the error)."""
    if dims is None:
        return f"{batch or 'N'},C,H,W"
    letters = list("NCHW") if len(dims) == 4 else ["N"] + [f"D{i}" for i in range(1, len(dims))]
    return ",".join(str(d) if d is not None else letters[i] for i, d in enumerate(dims))
