"""SSD layers: Normalize, PriorBox, DetectionOutput, in standard ONNX ops (no custom domain)."""
from __future__ import annotations

import numpy as np
from ..onnx_lite import TensorProto  # not `import onnx`: see onnx_lite

from ..ir import Layer
from ..layers.detection import prior_boxes
from .registry import MAPPINGS, BuildOptions, GraphBuilder

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


# Far above any published SSD (SSD512: 24564 priors, 196k values), far below what would exhaust
# memory: the priors, and DetectionOutput's per-image candidate table, become constants.
MAX_CONSTANT_VALUES = 1 << 24


def _prior_box_check(layer: Layer, options: BuildOptions) -> str | None:
    n = layer.output_shapes[0][2] * 2
    return None if n <= MAX_CONSTANT_VALUES else \
        f"the priors would be a {n}-value constant, more than the {MAX_CONSTANT_VALUES} caffe2onnx allows"


def _detection_output_check(layer: Layer, options: BuildOptions) -> str | None:
    p = layer.params
    n_prior = layer.input_shapes[2][2] // 4
    n = len(p.foreground) * (n_prior if p.top_k < 0 else min(p.top_k, n_prior))
    return None if n <= MAX_CONSTANT_VALUES else \
        f"{n} candidates per image (classes x nms_param.top_k), more than the {MAX_CONSTANT_VALUES} caffe2onnx allows"


@MAPPINGS.register("PriorBox", check=_prior_box_check)
def prior_box(layer: Layer, g: GraphBuilder) -> None:
    """Default boxes [1, 2, H*W*num_priors*4] (corners, then variances), a constant computed from the static H, W.

    Source: weiliu89/caffe src/caffe/layers/prior_box_layer.cpp
    Limits: an initializer equal to Caffe's top bit for bit (Caffe's float/double operation order;
    min_size and max_size truncated to int as Caffe does). An unset clip means false, as in
    weiliu89's schema (the brocolli/pip schema defaults it to true). The feature-map and image sizes must be
    static: caffe2onnx keeps H and W static (--dynamic-batch only makes the batch symbolic).
    Refused: priors of more than MAX_CONSTANT_VALUES (16M) values.
    """
    fm, img = layer.input_shapes
    priors = prior_boxes(layer.params, fm[2], fm[3], img[2], img[3])
    g.node("Identity", [g.const(priors, "priors")], list(layer.outputs))


def _decode(layer: Layer, g: GraphBuilder, loc: str, prior: str) -> str:
    """DecodeBBox for loc [N, Lc, P, 4] against priors [P, 4]: boxes [N, Lc, P, 4] (not clipped)."""
    p = layer.params
    n_prior = layer.input_shapes[2][2] // 4
    pv = g.node("Reshape", [prior, g.const([2, n_prior, 4], "shape", np.int64)])[0]
    box, var = (_squeeze0(g, s) for s in g.split(pv, 0, [1, 1], [g.fresh("prior_box"), g.fresh("prior_var")]))
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


@MAPPINGS.register("DetectionOutput", check=_detection_output_check)
def detection_output(layer: Layer, g: GraphBuilder) -> None:
    """Decoded boxes, per-class score > confidence_threshold + greedy NMS, keep_top_k over classes.

    Source: weiliu89/caffe src/caffe/layers/detection_output_layer.cpp, src/caffe/util/bbox_util.cpp
    Limits: top [1, 1, num_detections, 7] rows [image, label, score, xmin, ymin, xmax, ymax], per image
    by label then in NMS order, as Caffe; no detection at all gives Caffe's one row
    [i, -1, -1, -1, -1, -1, -1] per image. NMS as ApplyNMSFast: nms_param.top_k candidates by
    score (stable), IoU > nms_threshold suppresses (Caffe's IoU; boxes with xmax < xmin never
    overlap). Refused: nms_param.eta < 1 with nms_threshold > 0.5 (adaptive NMS), top_k 0,
    keep_top_k 0, visualize, background_label_id -1 with share_location (Caffe aborts), more than
    16M candidates per image. Ignored (files only): save_output_param, save_file. Equal scores
    across the keep_top_k cut keep the lower (label, index), as Caffe's std::sort does for up to
    16 detections (beyond that its order among equal scores is unspecified).
    """
    p = layer.params
    n_prior, n_cls, fg = layer.input_shapes[2][2] // 4, p.num_classes, p.foreground
    k = n_prior if p.top_k < 0 else min(p.top_k, n_prior)
    loc = g.node("Reshape", [layer.inputs[0], _i64(g, [-1, n_prior, p.num_loc_classes, 4])])[0]
    boxes = _decode(layer, g, g.node("Transpose", [loc], perm=[0, 2, 1, 3])[0], layer.inputs[2])  # [N, Lc, P, 4]
    conf = g.node("Reshape", [layer.inputs[1], _i64(g, [-1, n_prior, n_cls])])[0]
    scores = _gather_classes(g, g.node("Transpose", [conf], perm=[0, 2, 1])[0], fg, n_cls)  # [N, F, P]
    if p.share_location:
        boxes = g.node("Expand", [boxes, _i64(g, [1, len(fg), 1, 1])])[0]
    else:
        boxes = _gather_classes(g, boxes, fg, n_cls)
    # Candidates per (image, class): the top k scores, sorted (equal scores: lower prior first).
    values, index = g.node("TopK", [scores, _i64(g, [k], "k")], 2, axis=2, largest=1, sorted=1)
    wide = g.node("Expand", [g.unsqueeze(index, [3]), _i64(g, [1, 1, 1, 4])])[0]
    cand = g.node("GatherElements", [boxes, wide], axis=2)[0]  # [N, F, k, 4]
    picked = _nms(layer, g, values, cand, k)
    width = len(fg) * k
    dense = g.node("Where", [picked, g.node("Reshape", [values, _i64(g, [-1])])[0], g.const(f32(-np.inf), "ninf")])[0]
    dense = g.node("Reshape", [dense, _i64(g, [-1, width])])[0]  # [N, F*k]: score if NMS kept it, else -inf
    kept = g.node("Reshape", [picked, _i64(g, [-1, width])])[0]
    if 0 < p.keep_top_k < width:
        kept = _keep_top_k(g, dense, kept, p.keep_top_k)
    _rows(layer, g, kept, dense, cand, fg, k)


def _i64(g: GraphBuilder, value, hint: str = "shape") -> str:
    return g.const(value, hint, np.int64)


def _squeeze0(g: GraphBuilder, x: str) -> str:
    if g.opset >= 13:
        return g.node("Squeeze", [x, _i64(g, [0], "axes")])[0]
    return g.node("Squeeze", [x], axes=[0])[0]


def _scatter_flags(g: GraphBuilder, like: str, index: str, flags: str, axis: int) -> str:
    """A bool tensor shaped like `like`: flags (float 0/1) scattered at index along axis, else false."""
    zeros = g.node("Mul", [g.node("Cast", [like], to=TensorProto.FLOAT)[0], g.const(f32(0), "zero")])[0]
    hit = g.node("ScatterElements", [zeros, index, flags], axis=axis)[0]
    return g.node("Greater", [hit, g.const(f32(0), "zero")])[0]


def _nms(layer: Layer, g: GraphBuilder, values: str, cand: str, k: int) -> str:
    """ApplyNMSFast per (image, class) on the sorted candidates: a flat bool [N*F*k] of the kept ones."""
    p = layer.params
    thr = -np.finfo(f32).max if p.confidence_threshold is None else p.confidence_threshold
    valid = g.node("Greater", [values, g.const(f32(thr), "threshold")])[0]
    # NMS sees rank scores k, k-1, ..., 1 (0 below the threshold): no ties, and no runtime's
    # score_threshold or tie order can differ from Caffe's strict '>' and stable sort.
    rank = g.node("Where", [valid, g.const(np.arange(k, 0, -1, dtype=f32), "rank"), g.const(f32(0), "zero")])[0]
    sel = g.node("NonMaxSuppression", [
        g.node("Reshape", [_nms_boxes(g, cand), _i64(g, [-1, k, 4])])[0],
        g.node("Reshape", [rank, _i64(g, [-1, 1, k])])[0],
        _i64(g, [k], "max_boxes"), g.const([f32(p.nms_threshold)], "iou"), g.const([f32(0.5)], "min_rank")])[0]
    b, _, j = g.split(sel, 1, [1, 1, 1], [g.fresh("sel_b"), g.fresh("sel_c"), g.fresh("sel_k")])
    flat = g.node("Reshape", [g.node("Add", [g.node("Mul", [b, _i64(g, k, "k")])[0], j])[0], _i64(g, [-1])])[0]
    ones = g.node("Add", [g.node("Mul", [g.node("Cast", [flat], to=TensorProto.FLOAT)[0], g.const(f32(0), "zero")])[0],
                          g.const(f32(1), "one")])[0]
    return _scatter_flags(g, g.node("Reshape", [valid, _i64(g, [-1])])[0], flat, ones, 0)


def _keep_top_k(g: GraphBuilder, dense: str, kept: str, keep: int) -> str:
    """The keep highest scores per image over all classes; TopK takes the lower index (label, then
    NMS order) among equal scores, as Caffe's std::sort (an insertion sort up to 16 elements)."""
    top_v, top_i = g.node("TopK", [dense, _i64(g, [keep], "keep_top_k")], 2, axis=1, largest=1, sorted=1)
    flags = g.node("Cast", [g.node("Greater", [top_v, g.const(f32(-np.inf), "ninf")])[0]], to=TensorProto.FLOAT)[0]
    return _scatter_flags(g, kept, top_i, flags, 1)


def _rows(layer: Layer, g: GraphBuilder, kept: str, dense: str, cand: str, fg: tuple[int, ...], k: int) -> None:
    """NonZero lists kept entries in row-major order: by image, label, then NMS order, as Caffe."""
    nf = g.node("Transpose", [g.node("NonZero", [kept])[0]], perm=[1, 0])[0]  # [M, 2]: image, flat slot
    n, f = g.split(nf, 1, [1, 1], [g.fresh("img"), g.fresh("slot")])
    label = g.node("Gather", [g.const(np.repeat(np.array(fg, f32), k), "labels"), f], axis=0)[0]  # [M, 1]
    boxes = g.node("GatherND", [g.node("Reshape", [cand, _i64(g, [-1, len(fg) * k, 4])])[0], nf])[0]
    score = g.unsqueeze(g.node("GatherND", [dense, nf])[0], [1])
    rows = g.node("Concat", [g.node("Cast", [n], to=TensorProto.FLOAT)[0], label, score, boxes], axis=1)[0]
    # No detection in any image: Caffe writes [i, -1, -1, -1, -1, -1, -1] for every image i.
    batch = g.node("Gather", [g.node("Shape", [layer.inputs[0]])[0], _i64(g, [0], "axis0")], axis=0)[0]
    ids = g.node("Range", [_i64(g, 0, "start"), _squeeze0(g, batch), _i64(g, 1, "delta")])[0]
    ids = g.unsqueeze(g.node("Cast", [ids], to=TensorProto.FLOAT)[0], [1])
    minus = g.node("Expand", [g.const(np.full((1, 6), -1, f32), "minus_one"),
                              g.node("Concat", [batch, _i64(g, [6], "six")], axis=0)[0]])[0]
    both = g.node("Concat", [rows, g.node("Concat", [ids, minus], axis=1)[0]], axis=0)[0]
    m = g.node("Gather", [g.node("Shape", [rows])[0], _i64(g, [0], "axis0")], axis=0)[0]
    end = g.node("Where", [g.node("Greater", [m, _i64(g, [0], "zero")])[0], m, g.node("Add", [m, batch])[0]])[0]
    out = g.node("Slice", [both, _i64(g, [0], "start"), end, _i64(g, [0], "axes")])[0]
    g.node("Reshape", [out, _i64(g, [1, 1, -1, 7])], list(layer.outputs))
