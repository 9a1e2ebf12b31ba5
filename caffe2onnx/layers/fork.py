"""Specs of fork layers real Caffe lacks: BN, ShuffleChannel, Axpy, ConvolutionDepthwise, DepthwiseConvolution.

Each follows the fork's own C++ source (named in the spec's docstring); the
mapping and NumPy forward of the same type say the same.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from .registry import SPECS, Inferred, LayerProblem, Spec, count, opt
from .vision import Convolution, ConvParams

_BN_FIELDS = {  # fork -> fields whose presence says a text bn_param is that fork's
    "segnet": frozenset({"bn_mode", "scale_filler", "shift_filler"}),
    "pspnet": frozenset({"slope_filler", "bias_filler", "momentum", "eps", "frozen", "engine"}),
}
_SEGNET_EPS = 1e-9  # caffe-segnet's bn_layer.cpp hard-codes var_eps_


@dataclass(frozen=True)
class BNParams:
    fork: str  # "segnet" (scale, shift) or "pspnet" (slope, bias, mean, var)
    batch_stats: bool  # SegNet's bn_mode LEARN normalises with the batch's own statistics
    eps: float


def _bn_fork(layer) -> tuple[str, object]:
    """Which fork's BN this is: by the field a caffemodel used, else by the text fields set."""
    if layer.HasField("bn_param_segnet"):
        return "segnet", layer.bn_param_segnet
    if layer.HasField("bn_param_pspnet"):
        return "pspnet", layer.bn_param_pspnet
    p = layer.bn_param
    names = {fd.name for fd, _ in p.ListFields()}
    forks = [f for f, fields in _BN_FIELDS.items() if names & fields]
    if len(forks) == 1:
        return forks[0], p
    if forks:
        raise LayerProblem("bn_param", "mixes caffe-segnet fields (bn_mode, scale_filler, shift_filler) with "
                           "PSPNet's (slope_filler, bias_filler, momentum, eps, frozen); one BN is one fork's")
    raise LayerProblem("bn_param", "sets no field that tells caffe-segnet's BN (2 blobs: scale, shift; "
                       "bn_mode) from PSPNet's (4 blobs: slope, bias, mean, var; eps, frozen): add bn_mode "
                       "(SegNet, default LEARN) or eps (PSPNet, default 1e-5)")


@SPECS.register
class BN(Spec):
    """Batch norm with scale and shift in one layer (alexgkendall/caffe-segnet or hszhao/PSPNet bn_layer.cpp)."""

    type = "BN"

    @staticmethod
    def parse(p, layer):
        fork, bp = _bn_fork(layer)
        if fork == "segnet":
            mode = bp.DESCRIPTOR.fields_by_name["bn_mode"].enum_type.values_by_number[bp.bn_mode].name
            return BNParams("segnet", mode == "LEARN", _SEGNET_EPS)
        # PSPNet: at TEST (or frozen) the stored statistics; momentum and the fillers train only.
        return BNParams("pspnet", False, bp.eps)

    @staticmethod
    def infer(params, shapes):
        shape = shapes[0]
        if len(shape) > 4 or len(shape) < 2:
            raise LayerProblem("bottom", f"BN reads num/channels/height/width: 2 to 4 axes, got {len(shape)}")
        blob = (1, shape[1], 1, 1)
        if params.fork == "segnet":  # its Reshape writes a 4-D top (missing axes are 1)
            return Inferred([(*shape, *(1,) * (4 - len(shape)))], [blob, blob])
        return Inferred([shape], [blob] * 4)


@dataclass(frozen=True)
class GroupParams:
    group: int


@SPECS.register
class ShuffleChannel(Spec):
    """Channel shuffle: channel i*(C/g)+j goes to j*g+i (farmingyard/ShuffleNet shuffle_channel_layer.cpp)."""

    type = "ShuffleChannel"
    param = "shuffle_channel_param"
    fields = frozenset({"group"})

    @staticmethod
    def parse(p, layer):
        if p.group <= 0:
            raise LayerProblem("group", "must be greater than 0")
        return GroupParams(p.group)

    @staticmethod
    def infer(params, shapes):
        shape = shapes[0]
        if len(shape) < 2 or shape[1] % params.group:
            raise LayerProblem("group", f"{params.group} must divide the channels of {list(shape)}")
        return Inferred([shape], [])


@SPECS.register
class Axpy(Spec):
    """top = a * X + Y, a of shape (N, C) or (N, C, 1, 1) per channel (hujie-frank/SENet axpy_layer.cpp)."""

    type = "Axpy"
    bottoms = (3, 3)

    @staticmethod
    def infer(params, shapes):
        a, x, y = shapes
        if len(a) < 2 or len(x) < 2 or a[:2] != x[:2] or count(a) != a[0] * a[1]:
            raise LayerProblem("bottom", f"the scale {list(a)} must be (N, C) or (N, C, 1, 1) of X {list(x)}")
        if x != y:
            raise LayerProblem("bottom", f"X {list(x)} and Y {list(y)} must have the same shape")
        return Inferred([x], [])


def _pair(values, h, w, name: str) -> tuple[int, int]:
    """conv_dw_layer.cpp's rule: _h and _w if both set, else values[0] (and values[1] if two)."""
    if h is not None and w is not None:
        return h, w
    if h is not None or w is not None:
        raise LayerProblem(f"{name}_h/{name}_w", "the fork reads them only when both are set")
    if len(values) not in (1, 2):
        # With none the fork reads past an empty list (undefined); it ignores a third value.
        raise LayerProblem(name, f"the fork needs 1 or 2 values, got {len(values)}")
    return (values[0], values[-1])


@SPECS.register
class ConvolutionDepthwise(Spec):
    """Depthwise conv: top channels = bottom channels, weights (C, 1, kh, kw) (conv_dw_layer.cpp, e.g. Lamply/caffe)."""

    type = "ConvolutionDepthwise"
    param = "convolution_param"
    # The fork reads no axis/force_nd_im2col; num_output and group are not read either (see infer).
    fields = frozenset({"num_output", "bias_term", "pad", "kernel_size", "stride", "dilation", "pad_h",
                        "pad_w", "kernel_h", "kernel_w", "stride_h", "stride_w", "group"})

    @staticmethod
    def parse(p, layer):
        kernel = _pair(list(p.kernel_size), opt(p, "kernel_h"), opt(p, "kernel_w"), "kernel")
        stride = _pair(list(p.stride), opt(p, "stride_h"), opt(p, "stride_w"), "stride")
        pad = _pair(list(p.pad), opt(p, "pad_h"), opt(p, "pad_w"), "pad")
        dil = list(p.dilation)
        if len(dil) > 2:
            raise LayerProblem("dilation", f"the fork reads at most 2 values, got {len(dil)}")
        dilation = (dil[0], dil[-1]) if dil else (1, 1)
        for name, v in (("kernel", kernel), ("stride", stride), ("dilation", dilation)):
            if min(v) <= 0:
                raise LayerProblem(name, f"must be positive, got {list(v)}")
        return ConvParams(p.num_output, p.bias_term, kernel, stride, pad, dilation, 0, ())

    @staticmethod
    def infer(params, shapes):
        shape = shapes[0]
        if len(shape) != 4:
            raise LayerProblem("bottom", f"the fork convolves 4-D blobs only, got {len(shape)} axes")
        c = shape[1]
        out = []
        for d, k, s, pd, dl in zip(shape[2:], params.kernel, params.stride, params.pad, params.dilation):
            o = (d + 2 * pd - (dl * (k - 1) + 1)) // s + 1
            if o <= 0:
                raise LayerProblem("kernel_size", f"kernel extent {dl * (k - 1) + 1} exceeds padded input {d + 2 * pd}")
            out.append(o)
        full = dataclasses.replace(params, num_output=c, group=c)  # num_output/group are not read
        weights = [(c, 1, *params.kernel)] + ([(c,)] if params.bias_term else [])
        return Inferred([(shape[0], c, *out)], weights, full)


@SPECS.register
class DepthwiseConvolution(Convolution):
    """A BaseConvolutionLayer with convolution_param's own group.

    yonghenglh6/DepthwiseConvolution caffe/src/caffe/layers/depthwise_conv_layer.cpp.
    """

    type = "DepthwiseConvolution"
