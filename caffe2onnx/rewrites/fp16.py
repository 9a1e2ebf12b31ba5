"""``--fp16``: a float16 model (weights and compute), float32 inputs/outputs unless ``--fp16-io``.

The conversion is onnxconverter-common's ``float16.convert_float_to_float16`` (the
``[fp16]`` extra): every float tensor, initializer and Cast target becomes float16, with
Casts at the graph's inputs/outputs when they stay float32 (``keep_io_types``). Its default
bounds clamp weights to [1e-7, 1e4] in magnitude, tighter than float16 needs and not
Caffe's numbers: here only what float16 cannot hold is clamped (below its smallest
subnormal 2^-24 or above its largest finite 65504), and each clamp is counted in one warning.

Where it runs in float16: onnxruntime's CPU provider has float16 kernels for few ops; for
the others its InsertCastTransformer wraps the node in Casts to float32 at session start
and its optimiser then drops the Cast pairs between neighbours. Measured on onnxruntime
1.32 CPU with GoogLeNet (Conv, Gemm, pools, LRN as Mul/Sqrt/Div, Concat, Softmax): the
session inserts 121 Casts (optimisation off), and the optimised graph keeps 3: every one of
its 57 Conv, 57 Relu, 16 pools, Gemm, Concat, LRN and Softmax ops reads float32 (checked on
the value types of the session's saved graph), i.e. computes in float32 on the float16-rounded
weights (imports the full onnx package, unlike a plain conversion); the numbers
then differ from Caffe by the weight rounding alone. On CUDA every one of these ops has
a float16 kernel and the whole graph computes in float16.
"""
from __future__ import annotations

import warnings

from ..errors import ConversionError

FP16_KEY = "caffe2onnx.fp16"  # model metadata: "float32 io" or "float16 io"
_FP16_TINY, _FP16_MAX = 2.0 ** -24, 65504.0


def to_float16(model, keep_io_types: bool = True, fp32_nodes=()):
    """``model`` (a complete ModelProto, weights inline) with float16 weights and compute; the nodes
    named in ``fp32_nodes`` (baked preprocessing: pixels minus mean in full precision) stay float32."""
    try:
        from onnxconverter_common import float16
    except ImportError:
        raise ConversionError("--fp16 needs onnxconverter-common: pip install 'caffe2onnx[fp16]' "
                              "(or pip install onnxconverter-common)") from None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = float16.convert_float_to_float16(model, min_positive_val=_FP16_TINY, max_finite_val=_FP16_MAX,
                                               keep_io_types=keep_io_types, node_block_list=list(fp32_nodes))
    # tiny values clamped up to 2^-24 are what float16's rounding gives them anyway; large ones are not
    clamped = [w for w in caught if "truncated" in str(w.message) and "65504" in str(w.message)]
    if clamped:
        warnings.warn(f"--fp16: {len(clamped)} weight value(s) outside float16's range were clamped "
                      f"(e.g. {clamped[0].message})", stacklevel=2)
    props = {p.key: p.value for p in out.metadata_props}
    props[FP16_KEY] = "float32 io" if keep_io_types else "float16 io"
    del out.metadata_props[:]
    for k, v in props.items():
        out.metadata_props.add(key=k, value=v)
    return out


def is_float16(model) -> bool:
    return any(p.key == FP16_KEY for p in model.metadata_props)
