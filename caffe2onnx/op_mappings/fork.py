"""Fork layers real Caffe lacks: BN, ShuffleChannel, Axpy, ConvolutionDepthwise, DepthwiseConvolution."""
from __future__ import annotations

import numpy as np

from ..ir import Layer
from .registry import MAPPINGS, GraphBuilder
from .vision import convolution


def _per_channel(layer: Layer, index: int, g: GraphBuilder, ndim: int, array: np.ndarray | None = None) -> str:
    """A (1, C, 1, 1) blob (or a transform of it) shaped (C, 1, ...) to broadcast over an ndim-D blob."""
    arr = layer.weights[index] if array is None else array
    return g.weight(index, np.asarray(arr, np.float32).reshape((-1,) + (1,) * (ndim - 2)))


@MAPPINGS.register("BN")
def bn(layer: Layer, g: GraphBuilder) -> None:
    """SegNet: x*scale+shift (INFERENCE) or batch-normalised (LEARN); PSPNet: (x-mean)*(var+eps)^-0.5*slope+bias.

    Source: alexgkendall/caffe-segnet src/caffe/layers/bn_layer.cpp (blobs scale, shift, each
    (1,C,1,1); bn_mode default LEARN; var = E(x^2) - E(x)^2 over N,H,W, eps 1e-9 on the variance;
    4-D top) and hszhao/PSPNet src/caffe/layers/bn_layer.cpp (blobs slope, bias, mean, var, each
    (1,C,1,1); TEST phase uses the stored mean/var, eps from bn_param).
    Limits: TEST phase only (PSPNet's TRAIN phase without frozen would use batch statistics);
    SegNet's extra tops (batch mean, variance) are not supported.
    """
    p = layer.params
    x = layer.inputs[0]
    ndim = len(layer.input_shapes[0])
    if p.fork == "segnet" and ndim < 4:  # caffe-segnet's top is 4-D
        x = g.unsqueeze(x, list(range(ndim, 4)))
        ndim = 4
    out = list(layer.outputs)
    if p.fork == "pspnet":
        # Caffe's float steps: x - mean, * (var + eps)^-0.5, * slope, + bias.
        inv_std = np.power(layer.weights[3].astype(np.float32) + np.float32(p.eps), np.float32(-0.5))
        y = g.node("Sub", [x, _per_channel(layer, 2, g, ndim)])[0]
        y = g.node("Mul", [y, _per_channel(layer, 3, g, ndim, inv_std)])[0]
        y = g.node("Mul", [y, _per_channel(layer, 0, g, ndim)])[0]
        g.node("Add", [y, _per_channel(layer, 1, g, ndim)], out)
        return
    if p.batch_stats:
        axes = [0, 2, 3]
        mean = g.reduce("ReduceMean", x, axes)
        ex2 = g.reduce("ReduceMean", g.node("Mul", [x, x])[0], axes)
        var = g.node("Sub", [ex2, g.node("Mul", [mean, mean])[0]])[0]
        std = g.node("Sqrt", [g.node("Add", [var, g.const(np.float32(p.eps), "eps")])[0]])[0]
        x = g.node("Div", [g.node("Sub", [x, mean])[0], std])[0]
    y = g.node("Mul", [x, _per_channel(layer, 0, g, ndim)])[0]
    g.node("Add", [y, _per_channel(layer, 1, g, ndim)], out)


@MAPPINGS.register("ShuffleChannel")
def shuffle_channel(layer: Layer, g: GraphBuilder) -> None:
    """Channel i*(C/group)+j of the bottom becomes channel j*group+i of the top.

    Source: farmingyard/ShuffleNet shuffle_channel_layer.cpp (Resize_cpu).
    Limits: not in place (the fork would copy over its own input).
    """
    shape = layer.input_shapes[0]
    grp = layer.params.group
    x = g.reshape(layer.inputs[0], [shape[0], grp, shape[1] // grp, -1])
    x = g.node("Transpose", [x], 1, perm=[0, 2, 1, 3])[0]
    g.reshape(x, list(shape), list(layer.outputs))


@MAPPINGS.register("Axpy")
def axpy(layer: Layer, g: GraphBuilder) -> None:
    """top = a * X + Y with a one scale per (n, c): bottoms a (N,C[,1,1]), X, Y.

    Source: hujie-frank/SENet src/caffe/layers/axpy_layer.cpp.
    Limits: none known.
    """
    a, x, y = layer.inputs
    ndim = len(layer.input_shapes[1])
    a_shape = layer.input_shapes[0]
    if len(a_shape) != ndim:
        a = g.reshape(a, [a_shape[0], a_shape[1], *(1,) * (ndim - 2)])
    g.node("Add", [g.node("Mul", [a, x])[0], y], list(layer.outputs))


@MAPPINGS.register("ConvolutionDepthwise")
def convolution_depthwise(layer: Layer, g: GraphBuilder) -> None:
    """Per-channel 2-D cross-correlation, weights (C, 1, kh, kw) (+ bias (C,)); num_output and group not read.

    Source: conv_dw_layer.cpp of the ConvolutionDepthwise forks (e.g. Lamply/caffe
    src/caffe/layers/conv_dw_layer.cpp), used by farmingyard/ShuffleNet's deploy nets.
    Limits: one bottom; pad and stride must be given (the fork reads pad(0)/stride(0) of an empty list).
    """
    convolution(layer, g)


@MAPPINGS.register("DepthwiseConvolution")
def depthwise_convolution(layer: Layer, g: GraphBuilder) -> None:
    """Grouped convolution exactly as Convolution, group from convolution_param (usually = channels).

    Source: yonghenglh6/DepthwiseConvolution caffe/src/caffe/layers/depthwise_conv_layer.cpp
    (a BaseConvolutionLayer; its CPU forward is Caffe's im2col convolution).
    Limits: as Convolution.
    """
    convolution(layer, g)
