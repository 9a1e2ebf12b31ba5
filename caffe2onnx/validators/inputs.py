"""Inputs for a parity check: seeded random, ``.npy``/``.npz`` files, or images.

``--input`` forms: ``NAME=file.npy``, ``file.npz`` (its keys name the inputs),
``NAME=file.npz`` (the key NAME, or the only array), ``file.npy`` (nets with one
input), ``NAME=image.jpg``. Arrays are used as they are (already preprocessed);
a (C, H, W) array for a (1, C, H, W) input gets its batch axis. Arrays load with
``allow_pickle=False``, and every array header is read first: an array with more
elements than the net's largest input, or more than its file holds, is refused
before anything is allocated. Inputs not given are seeded standard-normal noise.

Images get Caffe's data-layer preprocessing: decoded to 0..255 floats, resized
(bilinear) to the input's H x W, channels in ``channel_order`` (Caffe nets trained
from OpenCV-decoded data expect BGR), then ``(x - mean) * scale`` as Caffe's
DataTransformer does. The mean (``--mean`` values or a ``mean.binaryproto``) is in
the net's channel order; a larger mean image is centre-cropped, as Caffe does at
TEST time. The image fills every batch item. Pillow is needed for images only.
"""
from __future__ import annotations

import numbers
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Sequence

import numpy as np

from ..errors import Caffe2OnnxError
from ..ir import Net

MAX_INPUT_BYTES = 2 << 30  # all of one check's inputs, float32; checked before any is generated or read
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".pgm", ".gif", ".tif", ".tiff", ".webp"}


class InputError(Caffe2OnnxError):
    """An input file or option cannot be used for this net."""


@dataclass(frozen=True)
class Preprocess:
    """Caffe-style image preprocessing (images only)."""

    mean: tuple[float, ...] | None = None  # one value, or one per channel
    mean_file: str | None = None  # a BlobProto (.binaryproto)
    scale: float = 1.0
    channel_order: str = "bgr"


def make_inputs(net: Net, specs: Sequence[str] = (), seed: int = 0,
                pre: Preprocess = Preprocess()) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """({input name: float32 array}, {input name: where it came from}) for every net input."""
    values: dict[str, np.ndarray] = {}
    sources: dict[str, str] = {}
    total = 4 * sum(int(np.prod(net.shape(n), dtype=np.int64)) for n in net.inputs)
    if total > MAX_INPUT_BYTES:
        raise InputError(f"the net's inputs ({', '.join(f'{n} {list(net.shape(n))}' for n in net.inputs[:3])}"
                         f"{', ...' if len(net.inputs) > 3 else ''}) need {total / 2**30:.1f} GiB, over the "
                         f"{MAX_INPUT_BYTES / 2**30:.0f} GiB bound of one check; give smaller --input-shape")
    for spec in specs:
        name, sep, path = spec.partition("=") if "=" in spec else ("", "", spec)
        for key, value, source in _load(net, name or None, Path(path), pre):
            if key not in net.inputs:
                raise InputError(f"--input {spec}: the net has no input '{key}' (its inputs: "
                                 f"{', '.join(net.inputs)})")
            values[key] = _fit(key, value, net.shape(key), source)
            sources[key] = source
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise InputError(f"the input seed must be a whole number >= 0, not {seed!r}")
    rng = np.random.default_rng(seed)
    for name in net.inputs:
        if name not in values:
            values[name] = rng.standard_normal(net.shape(name)).astype(np.float32)
            sources[name] = f"random normal (seed {seed})"
    return {n: values[n] for n in net.inputs}, {n: sources[n] for n in net.inputs}


def _load(net: Net, name: str | None, path: Path, pre: Preprocess):
    from ..errors import InputFileError
    from ..safe_io import MAX_ARRAY_BYTES, check_input_file
    try:
        check_input_file(path, "input file", MAX_ARRAY_BYTES)
    except InputFileError as e:
        raise InputError(str(e)) from None
    suffix = path.suffix.lower()
    if suffix in IMAGE_SUFFIXES:
        key = name or _only_input(net, path)
        yield key, load_image(path, net.shape(key), pre), f"image {path}"
        return
    max_elements = max(int(np.prod(net.shape(n), dtype=np.int64)) for n in net.inputs)
    try:
        _check_headers(path, max_elements)
        data = np.load(path, allow_pickle=False)
    except InputError:
        raise
    except Exception as e:  # ValueError (pickles), OSError, zipfile.BadZipFile, EOFError...
        raise InputError(f"cannot read {path} as .npy/.npz (pickled arrays are refused): {e}") from None
    if isinstance(data, np.ndarray):
        yield name or _only_input(net, path), data, str(path)
        return
    with data:
        keys = list(data.files)
        if name is not None:
            key = name if name in keys else (keys[0] if len(keys) == 1 else None)
            if key is None:
                raise InputError(f"{path} has no array '{name}' (it has {', '.join(keys)})")
            yield name, data[key], f"{path}[{key}]"
        else:
            for key in keys:
                yield key, data[key], f"{path}[{key}]"


def _check_headers(path: Path, max_elements: int) -> None:
    """Reads the .npy header(s) of ``path`` and refuses arrays too large for the net or their file."""
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as z:
            if len(z.infolist()) > 1000:
                raise InputError(f"{path}: {len(z.infolist())} arrays in one .npz (at most 1000)")
            for info in z.infolist():
                with z.open(info) as f:
                    _check_header(f, info.file_size, f"{path}[{info.filename}]", max_elements)
    else:
        with open(path, "rb") as f:
            _check_header(f, path.stat().st_size, str(path), max_elements)


def _check_header(f: BinaryIO, size: int, source: str, max_elements: int) -> None:
    version = np.lib.format.read_magic(f)
    read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
    shape, _, dtype = read(f)
    count = int(np.prod(shape, dtype=object)) if shape else 1
    if count > max_elements:
        raise InputError(f"{source}: the array header declares shape {list(shape)} ({count:,} elements), more than "
                         f"the net's largest input ({max_elements:,}); refused before reading")
    if dtype.hasobject:
        raise InputError(f"{source}: object arrays are pickled, and pickled arrays are refused")
    if count * dtype.itemsize > size:
        raise InputError(f"{source}: the header declares {count * dtype.itemsize:,} bytes of data, the file "
                         f"holds {size:,}")


def _only_input(net: Net, path: Path) -> str:
    if len(net.inputs) != 1:
        raise InputError(f"{path}: the net has {len(net.inputs)} inputs ({', '.join(net.inputs)}); "
                         f"write NAME={path}")
    return net.inputs[0]


def _fit(name: str, value: np.ndarray, shape: tuple[int, ...], source: str) -> np.ndarray:
    if value.dtype.kind not in "fiub":
        raise InputError(f"{source}: dtype {value.dtype} is not numeric")
    if value.shape != shape and value.shape == shape[1:] and shape[:1] == (1,):
        value = value[None]
    if value.shape != shape:
        raise InputError(f"{source}: shape {list(value.shape)} does not fit input '{name}' "
                         f"{list(shape)} (use --input-shape to change the net's input shape)")
    return np.ascontiguousarray(value, np.float32)


def load_image(path: str | Path, shape: tuple[int, ...], pre: Preprocess) -> np.ndarray:
    """An image as a (N, C, H, W) float32 batch for an input of ``shape``, preprocessed as Caffe does."""
    try:
        from PIL import Image
    except ImportError:
        raise InputError("image inputs need Pillow: pip install pillow (or give .npy/.npz inputs)") from None
    if len(shape) != 4 or shape[1] not in (1, 3):
        raise InputError(f"image {path}: the input shape {list(shape)} is not (N, 1 or 3, H, W)")
    n, c, h, w = shape
    if pre.channel_order not in ("bgr", "rgb"):
        raise InputError(f"channel order must be bgr or rgb, not {pre.channel_order!r}")
    try:
        with Image.open(path) as img:
            img = img.convert("L" if c == 1 else "RGB").resize((w, h), Image.BILINEAR)
            x = np.asarray(img, dtype=np.float32)
    except OSError as e:
        raise InputError(f"cannot read image {path}: {e}") from None
    x = x[None] if c == 1 else x.transpose(2, 0, 1)  # HWC -> CHW
    if c == 3 and pre.channel_order == "bgr":
        x = x[::-1]
    x = x - _mean(pre, (c, h, w))
    x = x * np.float32(pre.scale)
    return np.ascontiguousarray(np.broadcast_to(x, (n, c, h, w)), np.float32)


def _mean(pre: Preprocess, chw: tuple[int, int, int]) -> np.ndarray:
    c, h, w = chw
    if pre.mean is not None and pre.mean_file is not None:
        raise InputError("give --mean or --mean-file, not both")
    if pre.mean is not None:
        if len(pre.mean) not in (1, c):
            raise InputError(f"--mean has {len(pre.mean)} values for {c} channel(s)")
        return np.asarray(pre.mean, np.float32).reshape(-1, 1, 1)
    if pre.mean_file is None:
        return np.zeros((1, 1, 1), np.float32)
    mean = read_mean_file(pre.mean_file)
    if mean.shape[0] != c:
        raise InputError(f"mean file {pre.mean_file} has {mean.shape[0]} channels, the input {c}")
    mh, mw = mean.shape[1:]
    if (mh, mw) == (1, 1):
        return mean
    if mh < h or mw < w:
        raise InputError(f"mean file {pre.mean_file} is {mh}x{mw}, smaller than the input {h}x{w}")
    top, left = (mh - h) // 2, (mw - w) // 2
    return mean[:, top:top + h, left:left + w]


def read_mean_file(path: str | Path) -> np.ndarray:
    """A ``mean.binaryproto`` (Caffe BlobProto) as a (C, H, W) float32 array."""
    from ..proto import BlobProto
    blob = BlobProto()
    try:
        blob.ParseFromString(Path(path).read_bytes())
    except Exception as e:  # protobuf's DecodeError, or OSError
        raise InputError(f"cannot read mean file {path} as a BlobProto: {e}") from None
    dims = list(blob.shape.dim) if blob.HasField("shape") else [blob.num, blob.channels, blob.height, blob.width]
    data = np.asarray(blob.data if len(blob.data) else blob.double_data, np.float32)
    if int(np.prod(dims)) != data.size or data.size == 0:
        raise InputError(f"mean file {path}: {data.size} values for shape {dims}")
    while len(dims) > 3 and dims[0] == 1:
        dims = dims[1:]
    if len(dims) != 3:
        raise InputError(f"mean file {path}: shape {dims} is not (1, C, H, W)")
    return data.reshape(dims)
