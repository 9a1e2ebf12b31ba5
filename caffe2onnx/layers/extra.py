"""Specs of the reference Caffe's extra layers: Unsqueeze, PixelShuffle, Pad, MaxUnPool,
BatchNormKyle, and Proposal (refused)."""
from __future__ import annotations

from dataclasses import dataclass

from .registry import SPECS, Inferred, LayerProblem, Spec


@dataclass(frozen=True)
class UnsqueezeParams:
    dim: int  # as given; resolved against the input rank in infer


@SPECS.register
class Unsqueeze(Spec):
    """A size-1 axis inserted at dim (dim < 0 counts from the end, -1 = after the last)."""

    type = "Unsqueeze"
    param = "unsqueeze_param"
    fields = frozenset({"dim"})

    @staticmethod
    def parse(p, layer):
        if not layer.HasField("unsqueeze_param") or not p.HasField("dim"):
            raise LayerProblem("dim", "must be set (Caffe aborts without it)")
        return UnsqueezeParams(p.dim)

    @staticmethod
    def infer(params, shapes):
        shape = shapes[0]
        index = params.dim + len(shape) + 1 if params.dim < 0 else params.dim
        if not 0 <= index <= len(shape):
            raise LayerProblem("dim", f"{params.dim} is outside a {len(shape)}-D blob's axes")
        return Inferred([(*shape[:index], 1, *shape[index:])], [], UnsqueezeParams(index))


@dataclass(frozen=True)
class PixelShuffleParams:
    factor: int


@SPECS.register
class PixelShuffle(Spec):
    """out[n, p, i*r+a, j*r+b] = in[n, p*r*r + a*r + b, i, j]; C_out = C // (r*r)."""

    type = "PixelShuffle"
    param = "pixelshuffle_param"
    fields = frozenset({"upscale_factor"})

    @staticmethod
    def parse(p, layer):
        if not layer.HasField("pixelshuffle_param") or not p.HasField("upscale_factor"):
            raise LayerProblem("upscale_factor", "must be set (it is a required field)")
        if p.upscale_factor <= 0:
            raise LayerProblem("upscale_factor", f"must be positive, got {p.upscale_factor}")
        return PixelShuffleParams(p.upscale_factor)

    @staticmethod
    def infer(params, shapes):
        shape, r = shapes[0], params.factor
        if len(shape) != 4:
            raise LayerProblem("bottom", f"Caffe's PixelShuffle forward reads 4-D blobs only, got {len(shape)} axes")
        # Caffe checks C % r only; C // (r*r) channels are produced, the rest are never read.
        if shape[1] % r or shape[1] // (r * r) == 0:
            raise LayerProblem("upscale_factor",
                               f"{r} must divide the {shape[1]} channels, and r*r must not exceed them")
        return Inferred([(shape[0], shape[1] // (r * r), shape[2] * r, shape[3] * r)], [])


PAD_MODES = ("CONSTANT", "REPLICATE", "REFLECT")


@dataclass(frozen=True)
class PadParams:
    mode: str
    pads: tuple[int, int, int, int]  # up, down, left, right
    value: float


@SPECS.register
class Pad(Spec):
    """H/W padded by pad_u/pad_d/pad_l/pad_r (CONSTANT pad_value, REPLICATE edge, REFLECT); all < 0 crops."""

    type = "Pad"
    param = "pad_param"
    fields = frozenset({"pad_type", "pad_u", "pad_d", "pad_l", "pad_r", "pad_value"})

    @staticmethod
    def parse(p, layer):
        pads = (p.pad_u, p.pad_d, p.pad_l, p.pad_r)
        if any(x < 0 for x in pads) and not all(x < 0 for x in pads):
            # Caffe crops only when all four are negative; otherwise it copies the body to a
            # negative offset, outside the top blob.
            raise LayerProblem("pad_u/pad_d/pad_l/pad_r", f"{list(pads)} mixes negative and non-negative pads; "
                               "Caffe crops only when all four are negative and writes out of bounds otherwise")
        return PadParams(PAD_MODES[p.pad_type], pads, p.pad_value)

    @staticmethod
    def infer(params, shapes):
        shape = shapes[0]
        if len(shape) != 4:
            raise LayerProblem("bottom", f"only 4-D blobs (Caffe's forward reads 2-D and 3-D ones as 4-D), "
                               f"got {len(shape)} axes")
        u, d, left, right = params.pads
        h, w = shape[2] + u + d, shape[3] + left + right
        if h <= 0 or w <= 0:
            raise LayerProblem("pad_u/pad_d/pad_l/pad_r", f"crop {list(params.pads)} leaves no output of {list(shape)}")
        too_wide = max(u, d) >= shape[2] or max(left, right) >= shape[3]
        if params.mode == "REFLECT" and min(params.pads) >= 0 and too_wide:
            # Caffe's reflection would read its own padding (or another row): not a reflection.
            raise LayerProblem("pad_type", f"REFLECT pads {list(params.pads)} must be smaller than the input's "
                               f"height {shape[2]} and width {shape[3]}")
        return Inferred([(shape[0], shape[1], h, w)], [])


@dataclass(frozen=True)
class MaxUnPoolParams:
    dst: tuple[int, int]


@SPECS.register
class MaxUnPool(Spec):
    """Zeros of (N, C, dst_h, dst_w), then top[n, c].flat[mask[n, c, i]] = bottom[n, c].flat[i], in order."""

    type = "MaxUnPool"
    param = "max_unpool_param"
    fields = frozenset({"dst_h", "dst_w"})
    bottoms = (2, 2)

    @staticmethod
    def parse(p, layer):
        if not (p.HasField("dst_h") and p.HasField("dst_w")):
            raise LayerProblem("dst_h/dst_w", "both are required")
        if p.dst_h == 0 or p.dst_w == 0:
            raise LayerProblem("dst_h/dst_w", "must be positive")
        return MaxUnPoolParams((p.dst_h, p.dst_w))

    @staticmethod
    def infer(params, shapes):
        data, mask = shapes
        if len(data) != 4:
            raise LayerProblem("bottom", f"needs a 4-D blob, got {len(data)} axes")
        if tuple(mask) != tuple(data):
            # Caffe walks the mask with the data's extents and the mask's own strides.
            raise LayerProblem("bottom", f"mask {list(mask)} must have the data's shape {list(data)}")
        return Inferred([(data[0], data[1], *params.dst)], [])


@dataclass(frozen=True)
class BatchNormKyleParams:
    use_global_stats: bool
    eps: float
    use_alpha_beta: bool


@SPECS.register
class BatchNormKyle(Spec):
    """BatchNorm ((x - mean/f) / sqrt(var/f + eps)), then alpha * y + beta per channel with use_alpha_beta."""

    type = "BatchNormKyle"
    param = "batch_norm_param"
    fields = frozenset({"use_global_stats", "eps", "moving_average_fraction", "use_alpha_beta", "do_all_reduce"})

    @staticmethod
    def parse(p, layer):
        use_global = p.use_global_stats if p.HasField("use_global_stats") else True  # TEST phase
        return BatchNormKyleParams(use_global, p.eps, p.use_alpha_beta)

    @staticmethod
    def infer(params, shapes):
        shape = shapes[0]
        if len(shape) < 2:
            raise LayerProblem("bottom", f"needs a channel axis, got {len(shape)} axes")
        c = shape[1]
        extra = [(c,), (c,)] if params.use_alpha_beta else []
        return Inferred([shape], [(c,), (c,), (1,), *extra])


@SPECS.register
class Proposal(Spec):
    """Faster R-CNN region proposals: anchors, box deltas, clipping, top-N, NMS (refused)."""

    type = "Proposal"
    bottoms = (3, 3)
    tops = (1, 2)

    @staticmethod
    def parse(p, layer):
        raise LayerProblem("top", "its row count depends on the data (NMS, an unstable sort): no exact ONNX form; "
                           f"cut the net before it (end at its bottoms {', '.join(layer.bottom)}) and run the "
                           "proposal step outside the model")
