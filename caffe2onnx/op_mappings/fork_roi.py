"""Fork ROI layers: ROIPooling (Fast R-CNN) and PSROIPooling (R-FCN)."""
from __future__ import annotations

import numpy as np
from ..onnx_lite import TensorProto, helper  # not `import onnx`: see onnx_lite

from ..ir import Layer
from .registry import MAPPINGS, GraphBuilder

I64 = np.int64
F32 = np.float32


# onnxruntime implements MaxRoiPool for opsets 1-21 only (none for the opset-22 version).
MAX_ROI_POOL_OPSET = 21


@MAPPINGS.register("ROIPooling")
def roi_pooling(layer: Layer, g: GraphBuilder) -> None:
    """Max over pooled_h x pooled_w bins of each ROI (batch, x1, y1, x2, y2); corners round(coord * scale).

    Source: rbgirshick/caffe-fast-rcnn (faster-rcnn branch) src/caffe/layers/roi_pooling_layer.cpp:
    start = round(x1 * scale), size = max(end - start + 1, 1), bin [floor(i*size/P), ceil((i+1)*size/P))
    shifted by start and clipped to the map, empty bins 0.
    ONNX: MaxRoiPool up to opset 21 (onnxruntime's and OpenVINO's compute the same, checked in tests);
    from opset 22, where onnxruntime has no MaxRoiPool kernel, a Loop over the ROIs of masked ReduceMax.
    Limits: the batch index is not range-checked (Caffe aborts on a bad one); NaN inputs may differ.
    """
    p = layer.params
    rois = layer.inputs[1]
    r = layer.input_shapes[1][0]
    if len(layer.input_shapes[1]) != 2:
        rois = g.reshape(rois, [r, 5])
    if g.opset <= MAX_ROI_POOL_OPSET:
        g.node("MaxRoiPool", [layer.inputs[0], rois], list(layer.outputs),
               pooled_shape=list(p.pooled), spatial_scale=float(p.spatial_scale))
        return
    _roi_pool_loop(layer, g, rois)


def _roi_bins(g: GraphBuilder, start: str, end: str, bins: int, extent: int) -> tuple[str, str]:
    """Per ROI, Caffe's bins along one axis as a (R, bins, extent) 0/-inf mask, and (R, bins) emptiness."""
    size = g.node("Max", [g.node("Add", [g.node("Sub", [end, start])[0], g.const(F32(1), "one")])[0],
                          g.const(F32(1), "one")])[0]
    bin_size = g.node("Div", [size, g.const(F32(bins), "bins")])[0]  # (R, 1)
    lo = g.node("Floor", [g.node("Mul", [g.const(np.arange(bins, dtype=F32)[None], "idx"), bin_size])[0]])[0]
    hi = g.node("Ceil", [g.node("Mul", [g.const(np.arange(1, bins + 1, dtype=F32)[None], "idx1"), bin_size])[0]])[0]
    zero, top = g.const(F32(0), "zero"), g.const(F32(extent), "extent")
    lo = g.node("Min", [g.node("Max", [g.node("Add", [lo, start])[0], zero])[0], top])[0]
    hi = g.node("Min", [g.node("Max", [g.node("Add", [hi, start])[0], zero])[0], top])[0]
    pos = g.const(np.arange(extent, dtype=F32).reshape(1, 1, extent), "positions")
    inside = g.node("And", [g.node("Not", [g.node("Less", [pos, g.unsqueeze(lo, [2])])[0]])[0],
                            g.node("Less", [pos, g.unsqueeze(hi, [2])])[0]])[0]
    neg = g.node("Where", [inside, zero, g.const(F32(-np.inf), "neg_inf")])[0]
    empty = g.node("Not", [g.node("Less", [lo, hi])[0]])[0]
    return neg, empty


def _roi_pool_loop(layer: Layer, g: GraphBuilder, rois: str) -> None:
    p = layer.params
    ph, pw = p.pooled
    _, c, h, w = layer.input_shapes[0]
    r = layer.input_shapes[1][0]
    cols = g.split(rois, 1, [1, 1, 1, 1, 1], [g.fresh(f"roi{i}") for i in range(5)])
    scale = g.const(F32(p.spatial_scale), "scale")
    x1, y1, x2, y2 = (_round_half_away(g, g.node("Mul", [v, scale])[0]) for v in cols[1:])
    neg_h, empty_h = _roi_bins(g, y1, y2, ph, h)  # (R, P, H), (R, P)
    neg_w, empty_w = _roi_bins(g, x1, x2, pw, w)  # (R, Q, W), (R, Q)
    empty = g.node("Or", [g.unsqueeze(empty_h, [2]), g.unsqueeze(empty_w, [1])])[0]  # (R, P, Q)
    batch = g.node("Cast", [g.reshape(cols[0], [r])], 1, to=TensorProto.INT64)[0]
    ax = {k: g.const(v, f"axes{k}", I64) for k, v in (("1", [1]), ("2", [2]), ("3", [3]))}
    name = layer.name
    names: dict[str, str] = {}

    def v(local: str) -> str:  # body tensor names, unique in the graph (outer names are visible inside)
        if local not in names:
            names[local] = g.fresh(f"loop/{local}")
        return names[local]

    body = [  # one ROI: max over each bin's columns, then over its rows; empty bins 0
        helper.make_node("Identity", [v("cond")], [v("cond_out")]),
        helper.make_node("Gather", [batch, v("i")], [v("b")], axis=0),
        helper.make_node("Gather", [layer.inputs[0], v("b")], [v("xb")], axis=0),  # (C, H, W)
        helper.make_node("Gather", [neg_w, v("i")], [v("nw")], axis=0),  # (Q, W)
        helper.make_node("Gather", [neg_h, v("i")], [v("nh")], axis=0),  # (P, H)
        helper.make_node("Gather", [empty, v("i")], [v("e")], axis=0),  # (P, Q)
        helper.make_node("Unsqueeze", [v("xb"), ax["2"]], [v("xb4")]),  # (C, H, 1, W)
        helper.make_node("Add", [v("xb4"), v("nw")], [v("cols")]),  # (C, H, Q, W)
        helper.make_node("ReduceMax", [v("cols"), ax["3"]], [v("m1")], keepdims=0),  # (C, H, Q)
        helper.make_node("Unsqueeze", [v("m1"), ax["1"]], [v("m14")]),  # (C, 1, H, Q)
        helper.make_node("Unsqueeze", [v("nh"), ax["2"]], [v("nh3")]),  # (P, H, 1)
        helper.make_node("Add", [v("m14"), v("nh3")], [v("rows")]),  # (C, P, H, Q)
        helper.make_node("ReduceMax", [v("rows"), ax["2"]], [v("m2")], keepdims=0),  # (C, P, Q)
        helper.make_node("Where", [v("e"), g.const(F32(0), "zero"), v("m2")], [v("pooled")]),
    ]
    for k, node in enumerate(body):
        node.name = f"{name}/loop/{node.op_type}_{k}"
    graph = helper.make_graph(
        body, f"{name}_roi", [helper.make_tensor_value_info(v("i"), TensorProto.INT64, []),
                              helper.make_tensor_value_info(v("cond"), TensorProto.BOOL, [])],
        [helper.make_tensor_value_info(v("cond_out"), TensorProto.BOOL, []),
         helper.make_tensor_value_info(v("pooled"), TensorProto.FLOAT, [c, ph, pw])])
    g.node("Loop", [g.const(np.array(r, I64), "trips"), ""], list(layer.outputs), body=graph)


def _round_half_away(g: GraphBuilder, v: str) -> str:
    """C's round(): halves away from zero (ONNX Round rounds them to even)."""
    mag = g.node("Abs", [v])[0]
    whole = g.node("Floor", [mag])[0]
    up = g.node("Cast", [g.node("Not", [g.node("Less", [g.node("Sub", [mag, whole])[0],
                                                         g.const(F32(0.5), "half")])[0]])[0]], 1, to=1)[0]
    return g.node("Mul", [g.node("Sign", [v])[0], g.node("Add", [whole, up])[0]])[0]


def _bin_masks(g: GraphBuilder, start: str, size: str, grp: int, extent: int) -> tuple[str, str]:
    """(R, G, extent) 0/1 masks of each bin's [floor(p*bin+start), ceil((p+1)*bin+start)) clipped to
    [0, extent], and the (R, G) clipped bin lengths (0 where empty)."""
    bin_size = g.node("Div", [size, g.const(F32(grp), "groups")])[0]  # (R, 1)
    idx = g.const(np.arange(grp, dtype=F32)[None], "bins")  # (1, G)
    lo = g.node("Floor", [g.node("Add", [g.node("Mul", [idx, bin_size])[0], start])[0]])[0]
    idx1 = g.const(np.arange(1, grp + 1, dtype=F32)[None], "bins1")
    hi = g.node("Ceil", [g.node("Add", [g.node("Mul", [idx1, bin_size])[0], start])[0]])[0]
    zero, top = g.const(F32(0), "zero"), g.const(F32(extent), "extent")
    lo = g.node("Min", [g.node("Max", [lo, zero])[0], top])[0]
    hi = g.node("Min", [g.node("Max", [hi, zero])[0], top])[0]
    pos = g.const(np.arange(extent, dtype=F32).reshape(1, 1, extent), "positions")
    lo3, hi3 = g.unsqueeze(lo, [2]), g.unsqueeze(hi, [2])
    inside = g.node("And", [g.node("Not", [g.node("Less", [pos, lo3])[0]])[0], g.node("Less", [pos, hi3])[0]])[0]
    mask = g.node("Cast", [inside], 1, to=1)[0]
    length = g.node("Max", [g.node("Sub", [hi, lo])[0], zero])[0]
    return mask, length


@MAPPINGS.register("PSROIPooling")
def psroi_pooling(layer: Layer, g: GraphBuilder) -> None:
    """Average of bin (i, j) of each ROI over channel (d*G + i)*G + j; empty bins 0.

    Source: daijifeng001/caffe-rfcn src/caffe/layers/psroi_pooling_layer.cu (its only forward;
    Forward_cpu is NOT_IMPLEMENTED): start = round(x1) * scale, end = (round(x2) + 1) * scale,
    size = max(end - start, 0.1), bin [floor(i*size/G + start), ceil((i+1)*size/G + start)).
    ONNX: the bins as 0/1 masks over H and W, summed with two MatMuls, divided by the bin area.
    Limits: the batch index is not range-checked; CUDA may fuse i*bin+start into one FMA, so a bin
    edge that lands within one float rounding of an integer may differ from the GPU.
    """
    p = layer.params
    grp, d = p.pooled[0], p.output_dim
    n, c, h, w = layer.input_shapes[0]
    r = layer.input_shapes[1][0]
    rois = g.reshape(layer.inputs[1], [r, 5])
    cols = g.split(rois, 1, [1, 1, 1, 1, 1], [g.fresh(f"roi{i}") for i in range(5)])
    scale = g.const(F32(p.spatial_scale), "scale")
    start_w, start_h = (g.node("Mul", [_round_half_away(g, v), scale])[0] for v in cols[1:3])
    one = g.const(F32(1), "one")
    end_w, end_h = (g.node("Mul", [g.node("Add", [_round_half_away(g, v), one])[0], scale])[0] for v in cols[3:5])
    tenth = g.const(F32(0.1), "min_size")
    size_w = g.node("Max", [g.node("Sub", [end_w, start_w])[0], tenth])[0]
    size_h = g.node("Max", [g.node("Sub", [end_h, start_h])[0], tenth])[0]
    mask_h, len_h = _bin_masks(g, start_h, size_h, grp, h)  # (R, G, H), (R, G)
    mask_w, len_w = _bin_masks(g, start_w, size_w, grp, w)
    x = layer.inputs[0]
    gather = n != 1 or g.options.dynamic_batch  # one image: broadcast it over the ROIs, no copy per ROI
    if gather:  # each ROI's own image (int() truncates the stored float, as Cast does)
        batch = g.node("Cast", [g.reshape(cols[0], [r])], 1, to=TensorProto.INT64)[0]
        x = g.node("Gather", [x, batch], 1, axis=0)[0]
    x6 = g.node("Reshape", [x, g.const([r if gather else 1, d, grp, grp, h, w], "shape", I64)], 1)[0]
    # sum over w of x[r, d, i, j, h, w] * mask_w[r, j, w], then over h with mask_h[r, i, h]
    summed_w = g.node("MatMul", [x6, g.reshape(mask_w, [r, 1, 1, grp, w, 1])])[0]  # (R, D, G, G, H, 1)
    summed = g.node("MatMul", [g.reshape(mask_h, [r, 1, grp, 1, 1, h]), summed_w])[0]  # (R, D, G, G, 1, 1)
    area = g.node("Mul", [g.unsqueeze(len_h, [2]), g.unsqueeze(len_w, [1])])[0]  # (R, G, G)
    area = g.node("Max", [g.unsqueeze(area, [1]), one])[0]  # empty bins sum to 0: 0 / 1
    g.node("Div", [g.reshape(summed, [r, d, grp, grp]), area], list(layer.outputs))
