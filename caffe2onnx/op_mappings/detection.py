"""SSD layers: Normalize, PriorBox, DetectionOutput, in standard ONNX ops (no custom domain)."""
from __future__ import annotations

import numpy as np
from onnx import TensorProto

from ..ir import Layer
from ..layers.detection import prior_boxes
from .registry import MAPPINGS, GraphBuilder

f32 = np.float32


@MAPPINGS.register("Normalize")
def normalize(layer: Layer, g: GraphBuilder) -> None:
    """y = x / sqrt(sum(x^2) + eps) * scale; the sum over (C, H, W) (across_spatial) or over C per pixel.

    Source: weiliu89/caffe src/caffe/layers/normalize_layer.cpp
    Limits: 4-D bottoms only. eps is added to the sum of squares, inside the square root; across
    the spatial axes Caffe multiplies by 1/norm, per pixel it divides by the norm, as here.
    """
    p = layer.params
    x = layer.inputs[0]
    axes = [1, 2, 3] if p.across_spatial else [1]
    total = g.node("Add", [g.reduce("ReduceSumSquare", x, axes), g.const(f32(p.eps), "eps")])[0]
    norm = g.node("Sqrt", [total])[0]
    y = g.node("Mul", [x, g.node("Reciprocal", [norm])[0]])[0] if p.across_spatial else g.node("Div", [x, norm])[0]
    scale = layer.weights[0].reshape(() if p.channel_shared else (1, -1, 1, 1))
    g.node("Mul", [y, g.weight(0, scale)], list(layer.outputs))


@MAPPINGS.register("PriorBox")
def prior_box(layer: Layer, g: GraphBuilder) -> None:
    """Default boxes [1, 2, H*W*num_priors*4] (corners, then variances), computed at conversion time.

    Source: weiliu89/caffe src/caffe/layers/prior_box_layer.cpp
    Limits: an initializer equal to Caffe's top bit for bit (Caffe's float/double operation order;
    min_size and max_size truncated to int as Caffe does). An unset clip means false, as in
    weiliu89's schema (the brocolli/pip schema defaults it to true). The feature-map and image sizes must be
    static: caffe2onnx keeps H and W static (--dynamic-batch only makes the batch symbolic).
    """
    fm, img = layer.input_shapes
    priors = prior_boxes(layer.params, fm[2], fm[3], img[2], img[3])
    g.node("Identity", [g.const(priors, "priors")], list(layer.outputs))


def _decode(layer: Layer, g: GraphBuilder, loc: str, prior: str) -> str:
    """DecodeBBox for loc [N, Lc, P, 4] against priors [P, 4]: boxes [N, Lc, P, 4] (not clipped)."""
    p = layer.params
    n_prior = layer.input_shapes[2][2] // 4
    pv = g.node("Reshape", [prior, g.const([2, n_prior, 4], "shape", np.int64)])[0]
    box, var = (g.node("Squeeze", [s] + ([g.const([0], "axes", np.int64)] if g.opset >= 13 else []),
                       axes=None if g.opset >= 13 else [0])[0]
                for s in g.split(pv, 0, [1, 1], [g.fresh("prior_box"), g.fresh("prior_var")]))
    scaled = loc if p.variance_encoded_in_target else g.node("Mul", [var, loc])[0]
    if p.code_type == 1:  # CORNER: prior + variance * loc
        return g.node("Add", [box, scaled])[0]
    xmin, ymin, xmax, ymax = g.split(box, 1, [1, 1, 1, 1], [g.fresh(n) for n in ("pxmin", "pymin", "pxmax", "pymax")])
    pw, ph = g.node("Sub", [xmax, xmin])[0], g.node("Sub", [ymax, ymin])[0]
    if p.code_type == 3:  # CORNER_SIZE: prior + variance * loc * prior size
        size = g.node("Concat", [pw, ph, pw, ph], axis=1)[0]
        return g.node("Add", [box, g.node("Mul", [scaled, size])[0]])[0]
    # CENTER_SIZE, Caffe's float order: (v * l) * w + centre; exp(v * l) * w; centre -/+ size / 2
    half = g.const(f32(2), "two")
    cx = g.node("Div", [g.node("Add", [xmin, xmax])[0], half])[0]
    cy = g.node("Div", [g.node("Add", [ymin, ymax])[0], half])[0]
    l0, l1, l2, l3 = g.split(scaled, 3, [1, 1, 1, 1], [g.fresh(f"l{i}") for i in range(4)])
    dcx = g.node("Add", [g.node("Mul", [l0, pw])[0], cx])[0]
    dcy = g.node("Add", [g.node("Mul", [l1, ph])[0], cy])[0]
    hw = g.node("Div", [g.node("Mul", [g.node("Exp", [l2])[0], pw])[0], half])[0]
    hh = g.node("Div", [g.node("Mul", [g.node("Exp", [l3])[0], ph])[0], half])[0]
    corners = [g.node(op, [c, s])[0] for op, c, s in (("Sub", dcx, hw), ("Sub", dcy, hh), ("Add", dcx, hw),
                                                     ("Add", dcy, hh))]
    return g.node("Concat", corners, axis=3)[0]


def _nms_boxes(g: GraphBuilder, boxes: str) -> str:
    """Caffe's IoU is 0 for a box with xmax < xmin or ymax < ymin (it never suppresses nor is
    suppressed); NonMaxSuppression would reorder its corners, so such a box becomes a point."""
    x0, y0, x1, y1 = g.split(boxes, 3, [1, 1, 1, 1], [g.fresh(n) for n in ("bx0", "by0", "bx1", "by1")])
    bad = g.node("Or", [g.node("Less", [x1, x0])[0], g.node("Less", [y1, y0])[0]])[0]
    point = g.node("Concat", [x0, y0, x0, y0], axis=3)[0]
    return g.node("Where", [bad, point, boxes])[0]


def _gather_classes(g: GraphBuilder, x: str, classes: tuple[int, ...], total: int) -> str:
    if classes == tuple(range(total)):
        return x
    return g.node("Gather", [x, g.const(list(classes), "classes", np.int64)], axis=1)[0]


@MAPPINGS.register("DetectionOutput")
def detection_output(layer: Layer, g: GraphBuilder) -> None:
    """Decoded boxes, per-class score > confidence_threshold + greedy NMS, keep_top_k over classes.

    Source: weiliu89/caffe src/caffe/layers/detection_output_layer.cpp, src/caffe/util/bbox_util.cpp
    Limits: top [1, 1, num_detections, 7] rows [image, label, score, xmin, ymin, xmax, ymax], per image
    by label then in NMS order, as Caffe; no detection at all gives Caffe's one row
    [i, -1, -1, -1, -1, -1, -1] per image. NMS as ApplyNMSFast: nms_param.top_k candidates by
    score (stable), IoU > nms_threshold suppresses (Caffe's IoU; boxes with xmax < xmin never
    overlap). Refused: nms_param.eta < 1 with nms_threshold > 0.5 (adaptive NMS), top_k 0,
    keep_top_k 0, visualize. Ignored (files only): save_output_param, save_file. Equal scores
    across the keep_top_k cut keep the lower (label, index), as Caffe's std::sort does for up to
    16 detections (beyond that its order among equal scores is unspecified).
    """
    p = layer.params
    loc_shape, conf_shape, prior_shape = layer.input_shapes
    n_prior, n_cls = prior_shape[2] // 4, p.num_classes
    fg = p.foreground
    k = n_prior if p.top_k < 0 else min(p.top_k, n_prior)
    i64 = lambda v, hint="shape": g.const(v, hint, np.int64)  # noqa: E731
    loc = g.node("Reshape", [layer.inputs[0], i64([-1, n_prior, p.num_loc_classes, 4])])[0]
    loc = g.node("Transpose", [loc], perm=[0, 2, 1, 3])[0]
    boxes = _decode(layer, g, loc, layer.inputs[2])  # [N, Lc, P, 4]
    conf = g.node("Reshape", [layer.inputs[1], i64([-1, n_prior, n_cls])])[0]
    scores = _gather_classes(g, g.node("Transpose", [conf], perm=[0, 2, 1])[0], fg, n_cls)  # [N, F, P]
    if p.share_location:
        boxes = g.node("Expand", [boxes, i64([1, len(fg), 1, 1])])[0]
    else:
        boxes = _gather_classes(g, boxes, fg, n_cls)
    # Candidates per (image, class): the top k scores, sorted (equal scores: lower prior first).
    values, index = g.node("TopK", [scores, i64([k], "k")], 2, axis=2, largest=1, sorted=1)
    wide = g.node("Expand", [g.unsqueeze(index, [3]), i64([1, 1, 1, 4])])[0]
    cand = g.node("GatherElements", [boxes, wide], axis=2)[0]  # [N, F, k, 4]
    thr = -np.finfo(f32).max if p.confidence_threshold is None else p.confidence_threshold
    valid = g.node("Greater", [values, g.const(f32(thr), "threshold")])[0]
    # NMS sees rank scores k, k-1, ..., 1 (0 below the threshold): no ties, and no runtime's
    # score_threshold or tie order can differ from Caffe's strict '>' and stable sort.
    rank = g.const(np.arange(k, 0, -1, dtype=f32), "rank")
    rank = g.node("Where", [valid, rank, g.const(f32(0), "zero")])[0]
    sel = g.node("NonMaxSuppression", [
        g.node("Reshape", [_nms_boxes(g, cand), i64([-1, k, 4])])[0],
        g.node("Reshape", [rank, i64([-1, 1, k])])[0],
        i64([k], "max_boxes"), g.const([f32(p.nms_threshold)], "iou"), g.const([f32(0.5)], "min_rank")])[0]
    b, _, j = g.split(sel, 1, [1, 1, 1], [g.fresh("sel_b"), g.fresh("sel_c"), g.fresh("sel_k")])
    flat = g.node("Reshape", [g.node("Add", [g.node("Mul", [b, i64(k, "k")])[0], j])[0], i64([-1])])[0]
    flat_values = g.node("Reshape", [values, i64([-1])])[0]
    zero, one = g.const(f32(0), "zero"), g.const(f32(1), "one")
    zeros = g.node("Mul", [g.node("Cast", [g.node("Reshape", [valid, i64([-1])])[0]], to=TensorProto.FLOAT)[0], zero])[0]
    ones = g.node("Add", [g.node("Mul", [g.node("Cast", [flat], to=TensorProto.FLOAT)[0], zero])[0], one])[0]
    picked = g.node("Greater", [g.node("ScatterElements", [zeros, flat, ones], axis=0)[0], zero])[0]
    width = len(fg) * k
    ninf = g.const(f32(-np.inf), "ninf")
    dense = g.node("Where", [picked, flat_values, ninf])[0]
    dense = g.node("Reshape", [dense, i64([-1, width])])[0]  # [N, F*k]: score if kept by NMS, else -inf
    kept = g.node("Reshape", [picked, i64([-1, width])])[0]
    if 0 < p.keep_top_k < width:
        top_v, top_i = g.node("TopK", [dense, i64([p.keep_top_k], "keep_top_k")], 2, axis=1, largest=1, sorted=1)
        flags = g.node("Cast", [g.node("Greater", [top_v, ninf])[0]], to=TensorProto.FLOAT)[0]
        base = g.node("Mul", [g.node("Cast", [kept], to=TensorProto.FLOAT)[0], zero])[0]
        kept = g.node("Greater", [g.node("ScatterElements", [base, top_i, flags], axis=1)[0], zero])[0]
    _rows(layer, g, kept, dense, cand, fg, k)


def _rows(layer: Layer, g: GraphBuilder, kept: str, dense: str, cand: str, fg: tuple[int, ...], k: int) -> None:
    """NonZero lists kept entries in row-major order: by image, label, then NMS order, as Caffe."""
    i64 = lambda v, hint="shape": g.const(v, hint, np.int64)  # noqa: E731
    nf = g.node("Transpose", [g.node("NonZero", [kept])[0]], perm=[1, 0])[0]  # [M, 2]: image, flat slot
    n, f = g.split(nf, 1, [1, 1], [g.fresh("img"), g.fresh("slot")])
    score = g.node("GatherND", [dense, nf])[0]
    labels = g.const(np.repeat(np.array(fg, f32), k), "labels")
    label = g.node("Gather", [labels, f], axis=0)[0]  # [M, 1]
    boxes = g.node("GatherND", [g.node("Reshape", [cand, i64([-1, len(fg) * k, 4])])[0], nf])[0]
    image = g.node("Cast", [n], to=TensorProto.FLOAT)[0]
    rows = g.node("Concat", [image, label, g.unsqueeze(score, [1]), boxes], axis=1)[0]
    # No detection in any image: Caffe writes [i, -1, -1, -1, -1, -1, -1] for every image i.
    batch = g.node("Gather", [g.node("Shape", [layer.inputs[0]])[0], i64([0], "axis0")], axis=0)[0]
    ids = g.node("Range", [i64(0, "start"), g.node("Squeeze", [batch] + ([i64([0], "axes")] if g.opset >= 13 else []),
                                                  axes=None if g.opset >= 13 else [0])[0], i64(1, "delta")])[0]
    ids = g.unsqueeze(g.node("Cast", [ids], to=TensorProto.FLOAT)[0], [1])
    minus = g.node("Expand", [g.const(np.full((1, 6), -1, f32), "minus_one"),
                              g.node("Concat", [batch, i64([6], "six")], axis=0)[0]])[0]
    both = g.node("Concat", [rows, g.node("Concat", [ids, minus], axis=1)[0]], axis=0)[0]
    m = g.node("Gather", [g.node("Shape", [rows])[0], i64([0], "axis0")], axis=0)[0]
    end = g.node("Where", [g.node("Greater", [m, i64([0], "zero")])[0], m, g.node("Add", [m, batch])[0]])[0]
    out = g.node("Slice", [both, i64([0], "start"), end, i64([0], "axes")])[0]
    g.node("Reshape", [out, i64([1, 1, -1, 7])], list(layer.outputs))
