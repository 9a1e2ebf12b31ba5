"""Specs of the fork spatial layers: Interp (PSPNet/DeepLab), ROIPooling (Fast R-CNN), PSROIPooling (R-FCN)."""
from __future__ import annotations

from dataclasses import dataclass

from .registry import SPECS, Inferred, LayerProblem, Spec


@dataclass(frozen=True)
class InterpParams:
    height: int | None  # None until the input shape is known
    width: int | None
    crop_beg: int  # -pad_beg: rows/columns cut at the start of H and W
    crop_end: int  # -pad_end
    rule: tuple  # ("shrink", s) | ("zoom", z) | ("size", h, w) | ("shrink_zoom", s, z)


@SPECS.register
class Interp(Spec):
    """Crop by -pad_beg/-pad_end, then align-corners bilinear resize.

    hszhao/PSPNet src/caffe/layers/interp_layer.cpp and src/caffe/util/interp.cpp.
    """

    type = "Interp"
    param = "interp_param"
    fields = frozenset({"height", "width", "zoom_factor", "shrink_factor", "pad_beg", "pad_end"})

    @staticmethod
    def parse(p, layer):
        if p.pad_beg > 0 or p.pad_end > 0:
            raise LayerProblem("pad_beg" if p.pad_beg > 0 else "pad_end",
                               "the fork supports only non-positive padding (cropping)")
        has = {f: p.HasField(f) for f in ("shrink_factor", "zoom_factor", "height", "width")}
        # The same order of tests as InterpLayer::Reshape: the first that matches wins.
        if has["shrink_factor"] and not has["zoom_factor"]:
            rule = ("shrink", p.shrink_factor)
        elif has["zoom_factor"] and not has["shrink_factor"]:
            rule = ("zoom", p.zoom_factor)
        elif has["height"] and has["width"]:
            rule = ("size", p.height, p.width)
        elif has["shrink_factor"] and has["zoom_factor"]:
            rule = ("shrink_zoom", p.shrink_factor, p.zoom_factor)
        else:
            raise LayerProblem("height/width", "give zoom_factor, shrink_factor, or both height and width")
        if any(v < 1 for v in rule[1:]):
            raise LayerProblem(rule[0], f"must be positive, got {list(rule[1:])}")
        return InterpParams(None, None, -p.pad_beg, -p.pad_end, rule)

    @staticmethod
    def infer(params, shapes):
        shape = shapes[0]
        if len(shape) != 4:
            raise LayerProblem("bottom", f"Interp reads 4-D blobs, got {len(shape)} axes")
        eff = [d - params.crop_beg - params.crop_end for d in shape[2:]]
        if min(eff) <= 0:
            raise LayerProblem("pad_beg/pad_end", f"the crop leaves {eff} of {list(shape[2:])}")
        kind, *v = params.rule
        if kind == "size":
            out = v
        else:
            out = [(d - 1) // v[0] + 1 for d in eff] if kind in ("shrink", "shrink_zoom") else eff
            z = v[-1] if kind in ("zoom", "shrink_zoom") else 1
            out = [o + (o - 1) * (z - 1) for o in out]
        if min(out) <= 0:
            raise LayerProblem("height/width", f"output size {out} must be positive")
        full = InterpParams(out[0], out[1], params.crop_beg, params.crop_end, params.rule)
        return Inferred([(shape[0], shape[1], out[0], out[1])], [], full)


@dataclass(frozen=True)
class RoiParams:
    pooled: tuple[int, int]
    spatial_scale: float
    output_dim: int = 0  # PSROIPooling only


def _rois_count(rois) -> int:
    if len(rois) < 2 or rois[1] != 5 or any(d != 1 for d in rois[2:]):
        raise LayerProblem("bottom", f"rois must be (R, 5) (batch index, x1, y1, x2, y2), got {list(rois)}")
    return rois[0]


@SPECS.register
class ROIPooling(Spec):
    """Max over each ROI's pooled_h x pooled_w bins, corners rounded.

    rbgirshick/caffe-fast-rcnn src/caffe/layers/roi_pooling_layer.cpp.
    """

    type = "ROIPooling"
    param = "roi_pooling_param"
    fields = frozenset({"pooled_h", "pooled_w", "spatial_scale"})
    bottoms = (2, 2)

    @staticmethod
    def parse(p, layer):
        if p.pooled_h <= 0 or p.pooled_w <= 0:
            raise LayerProblem("pooled_h/pooled_w", "must be > 0")
        if not p.spatial_scale > 0:
            # ONNX MaxRoiPool requires a positive scale (Caffe itself would accept any).
            raise LayerProblem("spatial_scale", f"must be positive, got {p.spatial_scale}")
        return RoiParams((p.pooled_h, p.pooled_w), p.spatial_scale)

    @staticmethod
    def infer(params, shapes):
        x, rois = shapes
        if len(x) != 4:
            raise LayerProblem("bottom", f"features must be 4-D, got {list(x)}")
        return Inferred([(_rois_count(rois), x[1], *params.pooled)], [])


@SPECS.register
class PSROIPooling(Spec):
    """Position-sensitive average ROI pooling, group_size^2 bins (daijifeng001/caffe-rfcn psroi_pooling_layer.cu)."""

    type = "PSROIPooling"
    param = "psroi_pooling_param"
    fields = frozenset({"spatial_scale", "output_dim", "group_size"})
    bottoms = (2, 2)

    @staticmethod
    def parse(p, layer):
        if layer.HasField("psroi_pooling_param_rfcn"):  # the R-FCN caffemodel's own number
            p = layer.psroi_pooling_param_rfcn
        if p.output_dim <= 0 or p.group_size <= 0:
            raise LayerProblem("output_dim/group_size", "must be > 0")
        return RoiParams((p.group_size, p.group_size), p.spatial_scale, p.output_dim)

    @staticmethod
    def infer(params, shapes):
        x, rois = shapes
        g = params.pooled[0]
        if len(x) != 4 or x[1] != params.output_dim * g * g:
            raise LayerProblem("output_dim", f"input channels of {list(x)} must be output_dim * group_size^2 "
                               f"= {params.output_dim * g * g}")
        return Inferred([(_rois_count(rois), params.output_dim, g, g)], [])
