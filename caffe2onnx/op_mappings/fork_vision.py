"""Fork spatial layer Interp (PSPNet/DeepLab): a crop and an align-corners Resize."""
from __future__ import annotations

import numpy as np

from ..ir import Layer
from .registry import MAPPINGS, GraphBuilder

I64 = np.int64
F32 = np.float32


def _resize(g: GraphBuilder, x: str, sizes: list[int], out: list[str] | None = None) -> str:
    """Bilinear Resize to ``sizes`` with align_corners (x_in = x_out * (in-1)/(out-1); 0 for out = 1)."""
    sizes_c = g.const(sizes, "sizes", I64)
    if g.options.dynamic_batch:  # N and C from the input, H and W fixed
        lead = g.node("Slice", [g.node("Shape", [x])[0], g.const([0], "zero", I64), g.const([2], "two", I64)])[0]
        sizes_c = g.node("Concat", [lead, g.const(sizes[2:], "hw", I64)], 1, axis=0)[0]
    if g.opset >= 13:
        inputs = [x, "", "", sizes_c]
    else:  # opset 11/12 need roi and scales inputs present (empty)
        inputs = [x, g.const(np.zeros(0, F32), "roi"), g.const(np.zeros(0, F32), "scales"), sizes_c]
    return g.node("Resize", inputs, out or 1, mode="linear", coordinate_transformation_mode="align_corners")[0]


@MAPPINGS.register("Interp")
def interp(layer: Layer, g: GraphBuilder) -> None:
    """Crop -pad_beg/-pad_end off H and W, then bilinear resize with align-corners sampling.

    Source: hszhao/PSPNet src/caffe/layers/interp_layer.cpp and src/caffe/util/interp.cpp
    (caffe_cpu_interp2: h1r = (in-1)/(out-1) * h2, 0 for out = 1; a plain copy when sizes agree).
    ONNX: Slice for the crop, Resize mode linear, coordinate_transformation_mode align_corners.
    Limits: pad_beg/pad_end must be <= 0 (as in the fork); one bottom.
    """
    p = layer.params
    n, c, h, w = layer.input_shapes[0]
    x = layer.inputs[0]
    out = list(layer.outputs)
    if p.crop_beg or p.crop_end:
        starts = g.const([p.crop_beg, p.crop_beg], "starts", I64)
        ends = g.const([h - p.crop_end, w - p.crop_end], "ends", I64)
        x = g.node("Slice", [x, starts, ends, g.const([2, 3], "axes", I64)], 1)[0]
    if (p.height, p.width) == (h - p.crop_beg - p.crop_end, w - p.crop_beg - p.crop_end):
        g.node("Identity", [x], out)  # the fork copies when the sizes agree
        return
    _resize(g, x, [n, c, p.height, p.width], out)
