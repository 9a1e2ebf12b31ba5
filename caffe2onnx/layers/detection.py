"""Specs of the SSD layers (weiliu89/caffe): Normalize, PriorBox, DetectionOutput."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .registry import SPECS, Inferred, LayerProblem, Spec, count

f32 = np.float32
# DetectionOutput's top has a data-dependent number of rows (axis 2): Caffe's Reshape declares
# [1, 1, 1, 7] and Forward resizes it to [1, 1, num_kept, 7] (num_kept 0 -> one row per image).
DYNAMIC_AXES = {"DetectionOutput": 2}
DETECTIONS_DIM = "num_detections"


@dataclass(frozen=True)
class NormalizeParams:
    across_spatial: bool
    channel_shared: bool
    eps: float


@SPECS.register
class Normalize(Spec):
    """L2 normalisation over (C, H, W) or over C per pixel, times a learned scale (shared or per channel)."""

    type = "Normalize"
    param = "norm_param"
    fields = frozenset({"across_spatial", "channel_shared", "eps", "scale_filler"})

    @staticmethod
    def parse(p, layer):
        return NormalizeParams(p.across_spatial, p.channel_shared, p.eps)

    @staticmethod
    def infer(params, shapes):
        shape = shapes[0]
        if len(shape) != 4:  # Caffe reads num/channels/height/width
            raise LayerProblem("bottom", f"Normalize takes a 4-D blob, got {len(shape)} axes")
        return Inferred([shape], [() if params.channel_shared else (shape[1],)])


@dataclass(frozen=True)
class PriorBoxParams:
    min_sizes: tuple[float, ...]
    max_sizes: tuple[float, ...]
    aspect_ratios: tuple[float, ...]  # Caffe's expanded list: 1 first, then each new ratio (and 1/ratio)
    clip: bool
    variances: tuple[float, ...]  # 1 or 4 values
    img_h: int  # 0: bottom 1's height
    img_w: int
    step_h: float  # 0: image size / feature map size
    step_w: float
    offset: float

    @property
    def num_priors(self) -> int:
        return len(self.aspect_ratios) * len(self.min_sizes) + len(self.max_sizes)


def _both(p, single: str, h: str, w: str, kind):
    if p.HasField(h) or p.HasField(w):
        if p.HasField(single):
            raise LayerProblem(single, f"give either {single} or {h}/{w}, not both")
        vals = (kind(getattr(p, h)), kind(getattr(p, w)))
        if min(vals) <= 0:
            raise LayerProblem(f"{h}/{w}", f"both must be given and positive, got {list(vals)}")
        return vals
    if p.HasField(single):
        v = kind(getattr(p, single))
        if v <= 0:
            raise LayerProblem(single, f"must be positive, got {v}")
        return v, v
    return kind(0), kind(0)


@SPECS.register
class PriorBox(Spec):
    """Default boxes per feature-map location: [1, 2, H*W*num_priors*4] corners, then variances."""

    type = "PriorBox"
    param = "prior_box_param"

    @staticmethod
    def caffe_form(layer):
        if not layer.prior_box_param.HasField("clip"):  # weiliu89 defaults clip to false, this schema to true
            layer.prior_box_param.clip = False
    fields = frozenset({"min_size", "max_size", "aspect_ratio", "flip", "clip", "variance", "img_size",
                        "img_h", "img_w", "step", "step_h", "step_w", "offset"})
    bottoms = (2, 2)

    @staticmethod
    def parse(p, layer):
        mins = tuple(float(f32(v)) for v in p.min_size)
        if not mins or min(mins) <= 0:
            raise LayerProblem("min_size", f"must be given and positive, got {list(mins)}")
        maxs = tuple(float(f32(v)) for v in p.max_size)
        if maxs and len(maxs) != len(mins):
            raise LayerProblem("max_size", f"{len(maxs)} values for {len(mins)} min_size values")
        if any(b <= a for a, b in zip(mins, maxs)):
            raise LayerProblem("max_size", f"each must exceed its min_size, got {list(maxs)} for {list(mins)}")
        ratios = [f32(1)]
        for ar in (f32(v) for v in p.aspect_ratio):
            if any(abs(float(ar - r)) < 1e-6 for r in ratios):
                continue
            if ar <= 0:
                raise LayerProblem("aspect_ratio", f"must be positive, got {float(ar)}")
            ratios.append(ar)
            if p.flip:
                ratios.append(f32(1.0 / float(ar)))
        var = tuple(float(f32(v)) for v in p.variance) or (float(f32(0.1)),)
        if len(var) not in (1, 4) or min(var) <= 0:
            raise LayerProblem("variance", f"give 1 or 4 positive values, got {list(p.variance)}")
        img_h, img_w = _both(p, "img_size", "img_h", "img_w", int)
        step_h, step_w = _both(p, "step", "step_h", "step_w", lambda v: float(f32(v)))
        # weiliu89's schema defaults clip to false; the pip/brocolli schema (and real Caffe in
        # ../shared) to true. SSD nets were written for the original, so unset means false.
        clip = p.clip if p.HasField("clip") else False
        return PriorBoxParams(mins, maxs, tuple(float(r) for r in ratios), clip, var, img_h, img_w,
                              step_h, step_w, float(f32(p.offset)))

    @staticmethod
    def infer(params, shapes):
        for what, s in zip(("feature map", "image"), shapes):
            if len(s) != 4:
                raise LayerProblem("bottom", f"the {what} bottom must be 4-D (N, C, H, W), got {list(s)}")
        h, w = shapes[0][2:]
        return Inferred([(1, 2, h * w * params.num_priors * 4)], [])


@dataclass(frozen=True)
class DetectionOutputParams:
    num_classes: int
    share_location: bool
    background_label_id: int
    code_type: int  # PriorBoxParameter.CodeType: 1 CORNER, 2 CENTER_SIZE, 3 CORNER_SIZE
    variance_encoded_in_target: bool
    keep_top_k: int  # < 0: keep all
    confidence_threshold: float | None  # None: every score counts (Caffe's -FLT_MAX)
    nms_threshold: float
    top_k: int  # < 0: all candidates
    eta: float

    @property
    def num_loc_classes(self) -> int:
        return 1 if self.share_location else self.num_classes

    @property
    def foreground(self) -> tuple[int, ...]:
        return tuple(c for c in range(self.num_classes) if c != self.background_label_id)


CODE_TYPES = {1: "CORNER", 2: "CENTER_SIZE", 3: "CORNER_SIZE"}


@SPECS.register
class DetectionOutput(Spec):
    """Decode boxes, per-class threshold + NMS, keep_top_k over classes: [1, 1, N_det, 7] rows."""

    type = "DetectionOutput"
    param = "detection_output_param"
    # save_output_param, save_file and visualize_threshold only write files or draw (visualize).
    fields = frozenset({"num_classes", "share_location", "background_label_id", "nms_param", "code_type",
                        "variance_encoded_in_target", "keep_top_k", "confidence_threshold", "visualize",
                        "visualize_threshold", "save_output_param", "save_file"})
    bottoms = (3, 3)

    @staticmethod
    def caffe_form(layer):
        # Without nms_param weiliu89 runs NMS at the default threshold 0.3; the installed Caffe skips NMS.
        p = layer.detection_output_param
        if not p.HasField("nms_param"):
            p.nms_param.nms_threshold = p.nms_param.nms_threshold

    @staticmethod
    def parse(p, layer):
        if not p.HasField("num_classes") or p.num_classes < 1:
            raise LayerProblem("num_classes", "must be given and positive")
        if p.visualize:
            raise LayerProblem("visualize", "draws with OpenCV during Forward; set it false")
        if p.code_type not in CODE_TYPES:
            raise LayerProblem("code_type", f"unknown code type {p.code_type}")
        n = p.nms_param
        for f in n.ListFields():
            if f[0].name not in ("nms_threshold", "top_k", "eta"):
                raise LayerProblem(f"nms_param.{f[0].name}", "is not supported")
        if n.nms_threshold < 0:
            raise LayerProblem("nms_param.nms_threshold", f"must be >= 0, got {n.nms_threshold}")
        if not 0 < n.eta <= 1:
            raise LayerProblem("nms_param.eta", f"must be in (0, 1], got {n.eta}")
        if n.eta < 1 and f32(n.nms_threshold) > 0.5:
            raise LayerProblem("nms_param.eta", f"adaptive NMS (eta {n.eta} < 1 with nms_threshold "
                               f"{n.nms_threshold} > 0.5) has no ONNX equivalent: NonMaxSuppression "
                               "takes one IoU threshold")
        top_k = n.top_k if n.HasField("top_k") else -1
        if top_k == 0:
            raise LayerProblem("nms_param.top_k", "0 keeps no candidate: the layer would never detect")
        if p.keep_top_k == 0:
            raise LayerProblem("keep_top_k", "0 keeps no detection: the layer would never detect")
        if p.share_location and p.background_label_id == -1:
            raise LayerProblem("background_label_id", "-1 with share_location: Caffe keys the shared boxes by "
                               "label -1, skips decoding them as background, and aborts")
        thr = float(f32(p.confidence_threshold)) if p.HasField("confidence_threshold") else None
        return DetectionOutputParams(p.num_classes, p.share_location, p.background_label_id, p.code_type,
                                     p.variance_encoded_in_target, p.keep_top_k, thr,
                                     float(f32(n.nms_threshold)), top_k, float(f32(n.eta)))

    @staticmethod
    def infer(params, shapes):
        loc, conf, prior = shapes
        if len(prior) < 3 or prior[0] != 1 or prior[1] != 2 or prior[2] % 4 or count(prior) != 2 * prior[2]:
            raise LayerProblem("bottom", f"priors (bottom 2) must be [1, 2, num_priors*4], got {list(prior)}")
        p = prior[2] // 4
        for what, s, per in (("locations (bottom 0)", loc, p * params.num_loc_classes * 4),
                             ("confidences (bottom 1)", conf, p * params.num_classes)):
            if len(s) < 2 or s[1] != per or count(s[1:]) != per:
                raise LayerProblem("bottom", f"{what} must be [N, {per}] for {p} priors, got {list(s)}")
        if loc[0] != conf[0]:
            raise LayerProblem("bottom", f"locations and confidences have batch {loc[0]} and {conf[0]}")
        return Inferred([(1, 1, 1, 7)], [])


def prior_boxes(p: PriorBoxParams, height: int, width: int, img_h: int, img_w: int) -> np.ndarray:
    """PriorBox's top [1, 2, H*W*num_priors*4] exactly as Caffe's Forward_cpu computes it.

    Caffe's own mix of precisions, checked bit for bit against real Caffe: centres and box
    sizes in float32 (min/max sizes truncated to int, sqrt(int*int) in double, min*sqrtf(ar)
    in float), corners as (double(centre) -/+ double(size) / 2.) / image size, stored as float32.
    """
    if p.img_h and p.img_w:
        img_h, img_w = p.img_h, p.img_w
    step_w = f32(p.step_w) if p.step_w and p.step_h else f32(img_w) / f32(width)
    step_h = f32(p.step_h) if p.step_w and p.step_h else f32(img_h) / f32(height)
    sizes = []  # (box width, box height) as float32, in Caffe's order per location
    for s, mn in enumerate(p.min_sizes):
        m = int(mn)
        sizes.append((f32(m), f32(m)))
        if p.max_sizes:
            side = f32(np.sqrt(np.float64(m * int(p.max_sizes[s]))))
            sizes.append((side, side))
        for ar in (f32(r) for r in p.aspect_ratios):
            if abs(float(ar) - 1.0) < 1e-6:
                continue
            sizes.append((f32(m) * np.sqrt(ar), f32(m) / np.sqrt(ar)))
    bw = np.array([s[0] for s in sizes], np.float64)[None, None, :]
    bh = np.array([s[1] for s in sizes], np.float64)[None, None, :]
    cx = ((np.arange(width, dtype=f32) + f32(p.offset)) * step_w).astype(np.float64)[None, :, None]
    cy = ((np.arange(height, dtype=f32) + f32(p.offset)) * step_h).astype(np.float64)[:, None, None]
    shape = (height, width, len(sizes))
    boxes = np.stack([np.broadcast_to((cx - bw / 2.0) / img_w, shape), np.broadcast_to((cy - bh / 2.0) / img_h, shape),
                      np.broadcast_to((cx + bw / 2.0) / img_w, shape), np.broadcast_to((cy + bh / 2.0) / img_h, shape)],
                     axis=-1).astype(f32).reshape(-1)
    if p.clip:
        boxes = np.minimum(np.maximum(boxes, f32(0)), f32(1))
    var = np.array(p.variances, f32)
    variances = np.tile(var, boxes.size // 4) if var.size == 4 else np.full(boxes.size, var[0], f32)
    return np.stack([boxes, variances])[None]
