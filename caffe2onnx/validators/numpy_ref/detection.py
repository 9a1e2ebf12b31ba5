"""Normalize, PriorBox and DetectionOutput as weiliu89/caffe's Forward_cpu computes them.

Written from src/caffe/layers/{normalize,prior_box,detection_output}_layer.cpp and
src/caffe/util/bbox_util.cpp (DecodeBBox, GetMaxScoreIndex, ApplyNMSFast, JaccardOverlap),
loop for loop, independent of the ONNX mapping.
"""
from __future__ import annotations

import numpy as np

from ...ir import Layer
from ...layers.detection import prior_boxes
from .registry import FORWARDS

f32 = np.float32


@FORWARDS.register("Normalize")
def normalize(layer: Layer, xs: list[np.ndarray]) -> list[np.ndarray]:
    """x / sqrt(sum x^2 + eps) over (C, H, W) or over C per pixel, times scale (shared or per channel)."""
    p = layer.params
    x = xs[0].astype(f32, copy=False)
    sq = np.square(x, dtype=np.float64)
    if p.across_spatial:
        norm = np.sqrt(sq.sum(axis=(1, 2, 3), keepdims=True) + p.eps).astype(f32)
        y = x * (1.0 / norm.astype(np.float64)).astype(f32)  # Caffe scales by Dtype(1.0 / norm)
    else:
        norm = np.sqrt((sq.sum(axis=1, keepdims=True) + f32(p.eps)).astype(f32))
        y = x / norm
    scale = np.asarray(layer.weights[0], f32).reshape(-1)
    return [y * (scale[0] if p.channel_shared else scale[None, :, None, None])]


@FORWARDS.register("PriorBox")
def prior_box(layer: Layer, xs: list[np.ndarray]) -> list[np.ndarray]:
    """Caffe's default boxes and variances for the feature map's H x W (image size from bottom 1)."""
    fm, img = layer.input_shapes
    return [prior_boxes(layer.params, fm[2], fm[3], img[2], img[3])]


def decode(p, loc: np.ndarray, priors: np.ndarray, variances: np.ndarray) -> np.ndarray:
    """DecodeBBox for every prior: loc [P, 4], priors [P, 4], variances [P, 4] -> boxes [P, 4]."""
    v = np.ones_like(variances) if p.variance_encoded_in_target else variances
    pxmin, pymin, pxmax, pymax = priors.T
    if p.code_type == 1:  # CORNER
        return priors + v * loc
    pw, ph = pxmax - pxmin, pymax - pymin
    if p.code_type == 3:  # CORNER_SIZE
        return priors + v * loc * np.stack([pw, ph, pw, ph], axis=1)
    cx, cy = (pxmin + pxmax) / f32(2), (pymin + pymax) / f32(2)  # CENTER_SIZE
    dcx = v[:, 0] * loc[:, 0] * pw + cx
    dcy = v[:, 1] * loc[:, 1] * ph + cy
    dw = np.exp(v[:, 2] * loc[:, 2]) * pw
    dh = np.exp(v[:, 3] * loc[:, 3]) * ph
    return np.stack([dcx - dw / f32(2), dcy - dh / f32(2), dcx + dw / f32(2), dcy + dh / f32(2)], axis=1)


def _size(b: np.ndarray) -> np.ndarray:
    """BBoxSize: 0 for a box with xmax < xmin or ymax < ymin."""
    w, h = b[..., 2] - b[..., 0], b[..., 3] - b[..., 1]
    return np.where((w < 0) | (h < 0), f32(0), w * h)


def jaccard(box: np.ndarray, others: np.ndarray) -> np.ndarray:
    """JaccardOverlap(box, other) for each row of others, in float32 as Caffe computes it."""
    disjoint = ((others[:, 0] > box[2]) | (others[:, 2] < box[0]) | (others[:, 1] > box[3])
                | (others[:, 3] < box[1]))
    iw = np.minimum(box[2], others[:, 2]) - np.maximum(box[0], others[:, 0])
    ih = np.minimum(box[3], others[:, 3]) - np.maximum(box[1], others[:, 1])
    inter = iw * ih
    with np.errstate(divide="ignore", invalid="ignore"):
        iou = inter / (_size(box) + _size(others) - inter)
    return np.where(disjoint | ~((iw > 0) & (ih > 0)), f32(0), iou)


def nms_fast(boxes: np.ndarray, scores: np.ndarray, p) -> list[int]:
    """ApplyNMSFast: scores > threshold, stable sort descending, top_k, greedy IoU <= threshold."""
    thr = -np.finfo(f32).max if p.confidence_threshold is None else f32(p.confidence_threshold)
    idx = np.flatnonzero(scores > thr)
    order = idx[np.argsort(-scores[idx], kind="stable")]
    if p.top_k > -1:
        order = order[:p.top_k]
    kept: list[int] = []
    threshold = f32(p.nms_threshold)
    for i in order:
        if not kept or bool(np.all(jaccard(boxes[i], boxes[kept]) <= threshold)):
            kept.append(int(i))
            if p.eta < 1 and threshold > 0.5:
                threshold = f32(threshold * f32(p.eta))
    return kept


@FORWARDS.register("DetectionOutput")
def detection_output(layer: Layer, xs: list[np.ndarray]) -> list[np.ndarray]:
    """Decode, per-class NMS, keep_top_k over classes; rows [image, label, score, x1, y1, x2, y2]."""
    p = layer.params
    loc, conf, prior = (np.asarray(x, f32) for x in xs)
    num, n_prior = loc.shape[0], prior.shape[2] // 4
    loc = loc.reshape(num, n_prior, p.num_loc_classes, 4)
    conf = conf.reshape(num, n_prior, p.num_classes)
    priors, variances = prior.reshape(2, n_prior, 4)
    rows = []
    for i in range(num):
        boxes = {c: decode(p, loc[i, :, c], priors, variances) for c in range(p.num_loc_classes)}
        found = {c: nms_fast(boxes[0 if p.share_location else c], conf[i, :, c], p) for c in p.foreground}
        total = sum(len(v) for v in found.values())
        if -1 < p.keep_top_k < total:
            pairs = [(conf[i, j, c], c, j) for c in sorted(found) for j in found[c]]
            # std::sort of (score desc); equal scores kept in collection order (see the mapping)
            pairs = sorted(pairs, key=lambda t: -t[0])[:p.keep_top_k]
            found = {c: [j for _, cc, j in pairs if cc == c] for c in sorted({t[1] for t in pairs})}
        for c in sorted(found):
            b = boxes[0 if p.share_location else c]
            rows += [[i, c, conf[i, j, c], *b[j]] for j in found[c]]
    if not rows:  # Caffe: one row [i, -1, -1, -1, -1, -1, -1] per image
        rows = [[i] + [-1] * 6 for i in range(num)]
    return [np.array(rows, f32).reshape(1, 1, -1, 7)]
