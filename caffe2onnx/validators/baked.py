"""Inputs of a model with baked preprocessing: the raw image for the model, the preprocessed one for Caffe.

The comparison starts after the preprocessing: Caffe (or the NumPy reference) gets the net's
input as Caffe's DataTransformer makes it from the image (``inputs.load_image``: resized,
BGR, ``(x - mean) * scale`` with the mean and scale the model records), the ONNX model gets
the same resized pixels as they come from the decoder (uint8/float, NHWC/NCHW, RGB/BGR as
baked). Without an image the raw input is seeded random (uniform 0..255 pixels) and the
reference gets ``InputPreprocess.apply`` of it.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from ..rewrites.preprocess import model_preprocess
from .inputs import IMAGE_SUFFIXES, InputError, Preprocess, load_image


def baked_feeds(model, net, values: dict, sources: dict, specs: Sequence[str], seed: int) -> dict[str, np.ndarray]:
    """The raw model inputs for baked preprocessing ({} if none); updates ``values`` (the reference's) to match."""
    found = model_preprocess(model)
    if found is None:
        return _float16_feeds(model, values)
    name, spec = found
    shape = net.shape(name)
    image = _image_for(name, net, specs)
    if image is not None:
        pixels = load_image(image, shape, Preprocess(channel_order="rgb"))  # resized, RGB, 0..255: the raw image
        raw = pixels[:, ::-1] if spec.order == "bgr" else pixels
        values[name] = load_image(image, shape, Preprocess(mean=spec.mean, scale=spec.scale, channel_order="bgr"))
    elif sources.get(name, "").startswith("random"):
        raw = np.random.default_rng(seed).integers(0, 256, shape).astype(np.float32)
        values[name] = spec.apply(raw if spec.layout == "nchw" else raw.transpose(0, 2, 3, 1))
        sources[name] = f"random pixels 0..255 (seed {seed}), preprocessed as baked"
    else:
        raise InputError(f"input '{name}' has baked preprocessing: give an image (NAME=image.jpg) or nothing, "
                         f"not {sources.get(name)}")
    if spec.layout == "nhwc":
        raw = raw.transpose(0, 2, 3, 1)
    return {**_float16_feeds(model, values),
            name: np.ascontiguousarray(raw.round() if spec.dtype == "uint8" else raw, spec.dtype)}


def _float16_feeds(model, values: dict) -> dict[str, np.ndarray]:
    """float16 inputs of an ``--fp16-io`` model; the reference gets the same (rounded) numbers."""
    feeds = {}
    for vi in model.graph.input:
        if vi.type.tensor_type.elem_type == 10 and vi.name in values:  # TensorProto.FLOAT16
            feeds[vi.name] = values[vi.name].astype(np.float16)
            values[vi.name] = feeds[vi.name].astype(np.float32)
    return feeds


def _image_for(name: str, net, specs: Sequence[str]) -> Path | None:
    for s in specs:
        key, _, path = s.rpartition("=") if "=" in s else ("", "", s)
        if Path(path).suffix.lower() in IMAGE_SUFFIXES and (key == name or (not key and len(net.inputs) == 1)):
            return Path(path)
    return None
