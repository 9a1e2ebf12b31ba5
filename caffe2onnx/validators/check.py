"""Orchestration of one parity check: net + inputs -> reference and ONNX -> per-blob verdicts.

Every intermediate tensor of the ONNX model is exposed as an output (tensor names
are the Net's tensor names), so each Caffe layer's output is compared, in Caffe's
execution order. The first failing one is the first diverging layer: all the
tensors it reads were produced earlier and matched.
"""
from __future__ import annotations

import dataclasses
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import onnx

from ..errors import Caffe2OnnxError
from ..ir import Net
from .compare import BlobStats, compare_blob, compare_detections, tolerances
from .inputs import Preprocess, make_inputs
from .references import REFERENCES, get_reference
from .tolerances import FP16_ATOL, FP16_RTOL
from ..rewrites.fp16 import is_float16


# The reference and onnxruntime each hold every blob of the net (all are compared): the
# blobs' total, in float32, must fit this bound, checked before either runs.
MAX_TENSOR_BYTES = 8 << 30


class ValidationError(Caffe2OnnxError):
    """The check could not run: unreadable model, inputs that do not fit, onnxruntime failure."""


@dataclass
class ValidationResult:
    """Everything ``report`` renders; ``blobs`` is in execution order."""

    net: str
    onnx: str
    reference: str
    provider: str  # where it ran: onnxruntime's execution provider, OpenVINO's device, or numpy
    atol: float
    rtol: float
    inputs: dict[str, dict[str, Any]]  # name -> {"shape": [...], "source": "..."}
    outputs: tuple[str, ...]
    blobs: list[BlobStats]
    not_compared: list[str] = field(default_factory=list)
    first_divergence: dict[str, Any] | None = None  # layer, type, params, tensor, inputs
    seconds: dict[str, float] = field(default_factory=dict)
    runtime: str = "onnxruntime"  # validators/runtimes: onnxruntime, openvino, reference
    runtime_version: str = ""

    @property
    def passed(self) -> bool:
        return all(b.passed for b in self.blobs) and bool(self.blobs)

    @property
    def failures(self) -> list[BlobStats]:
        return [b for b in self.blobs if not b.passed]


def jsonable(value: Any) -> Any:
    """Layer params (frozen dataclasses, tuples, numpy scalars) as plain JSON values."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, (tuple, list)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


def validate(prototxt: str | Path | None, caffemodel: str | Path | None, model: str | Path | onnx.ModelProto, *,
             reference: str = "auto", provider: str = "cpu", atol: float | None = None,
             rtol: float | None = None, inputs: Mapping[str, np.ndarray] | None = None,
             input_specs: Sequence[str] = (), seed: int = 0, preprocess: Preprocess = Preprocess(),
             input_shapes: Mapping[str, Sequence[int]] | None = None, net: Net | None = None,
             stages: Sequence[str] = (), level: int = 0, timeout: float | None = None,
             caffe_proto: str | Path | None = None, phase: int | str | None = None,
             runtime: str = "onnxruntime", random_weights: int | None = None,
             batch: int | None = None) -> ValidationResult:
    """Compares the ONNX model with the reference on every blob; raises Caffe2OnnxError if it cannot run.

    ``inputs`` (arrays) take precedence over ``input_specs`` (``--input`` strings);
    missing inputs are seeded random. ``net`` skips loading (it must carry the weights).
    ``timeout`` (seconds, default 600) limits the reference run and the ONNX run each.
    ``runtime``: onnxruntime, openvino or reference (validators/runtimes); ``provider`` is onnxruntime's.
    Input shapes default to the model's own (see model_info.check_shapes: the shapes convert
    used, a symbolic batch as ``batch``, default 1); ``input_shapes`` overrides them.
    ``random_weights``: the seed convert's ``random_weights`` used (the same seed, the same weights).
    """
    from ..parser import load
    if timeout is not None and not timeout > 0:
        raise ValidationError(f"the time limit must be a positive number of seconds, not {timeout}")
    if reference not in ("auto", *REFERENCES):
        raise ValidationError(f"unknown reference {reference!r}; choose auto, {', '.join(REFERENCES)}")
    from .runtimes import preflight
    preflight(runtime, provider)
    onnx_model, onnx_name = _load_onnx(model)
    if net is None:
        from ..model_info import check_shapes, graph_input_shapes, read_info
        fixed = {n: d[0] for n, d in graph_input_shapes(onnx_model).items() if d and d[0] not in (None, batch)}
        if batch is not None and fixed:
            name, n = next(iter(fixed.items()))
            raise ValidationError(f"batch {batch} asked, but the model's input '{name}' has the static batch {n}: "
                                  "only a symbolic batch (convert --dynamic-batch) can be checked at another")
        info = read_info(onnx_model)  # how convert read the net, unless told otherwise
        stages, level, phase = stages or info.get("stages", ()), level or info.get("level", 0), phase or info.get("phase")
        shapes = {**check_shapes(onnx_model, batch), **(input_shapes or {})}
        net = load(prototxt, caffemodel, input_shapes=shapes, stages=stages, level=level,
                   caffe_proto=caffe_proto, phase=phase, random_weights=random_weights)
    # pycaffe reads only its own schema: a net read with a fork's caffe.proto is judged by numpy
    ref = get_reference("numpy" if caffe_proto is not None and reference == "auto" else reference, net)
    total = 4 * sum(int(np.prod(t.shape, dtype=np.int64)) for t in net.tensors.values())
    if total > MAX_TENSOR_BYTES:
        raise ValidationError(f"the net's blobs need {total / 2**30:.1f} GiB in all, over the "
                              f"{MAX_TENSOR_BYTES / 2**30:.0f} GiB bound of one check (each side holds every blob); "
                              "give smaller --input-shape")
    values, sources = make_inputs(net, input_specs, seed, preprocess)
    for name, value in (inputs or {}).items():
        if name not in net.inputs:
            raise ValidationError(f"the net has no input '{name}' (its inputs: {', '.join(net.inputs)})")
        values[name], sources[name] = np.ascontiguousarray(value, np.float32), "array"
    from .baked import baked_feeds
    feeds = baked_feeds(onnx_model, net, values, sources, input_specs, seed)  # raw images, if baked
    _check_onnx_inputs(onnx_model, {**values, **feeds})

    t0 = time.perf_counter()
    want = ref.run(net, prototxt, caffemodel, values, timeout=timeout)
    t1 = time.perf_counter()
    users = [str(Path(p).resolve().parent) for p in (prototxt, caffemodel, model)
             if p is not None and not isinstance(p, onnx.ModelProto)]
    data_dir = None if isinstance(model, onnx.ModelProto) else str(Path(model).resolve().parent)
    got, ran = _run_onnx(onnx_model, net, {**values, **feeds}, provider, timeout, users, data_dir, runtime)
    got.update({n: values[n] for n in feeds})  # the comparison starts after the baked preprocessing
    t2 = time.perf_counter()

    if is_float16(onnx_model):  # its own stated tolerance (tolerances.py), on any provider
        atol, rtol = (FP16_ATOL if atol is None else atol), (FP16_RTOL if rtol is None else rtol)
    atol, rtol = tolerances(ran.device, atol, rtol)
    blobs, missing = [], []
    for layer in net.layers:
        for tensor in layer.outputs:
            if tensor not in want or tensor not in got:
                missing.append(tensor)
                continue
            meta = dict(blob=net.tensors[tensor].blob, layer=layer.name, layer_type=layer.type,
                        is_output=tensor in net.outputs)
            if layer.type == "DetectionOutput":  # rows with equal scores may come in another order
                blobs.append(compare_detections(tensor, got[tensor], want[tensor], atol,
                                                layer.params.keep_top_k, **meta))
                continue
            blobs.append(compare_blob(tensor, got[tensor], want[tensor], atol, rtol, **meta))
    lost = [o for o in net.outputs if o in missing]
    if lost:
        raise ValidationError(f"net output(s) {', '.join(lost)} missing from the "
                              + ("reference" if lost[0] not in want else "ONNX model's tensors"))
    result = ValidationResult(
        net=net.name or "caffe_net", onnx=onnx_name, reference=ref.name, provider=ran.device, atol=atol, rtol=rtol,
        inputs={n: {"shape": list(values[n].shape), "source": sources[n]} for n in net.inputs},
        outputs=tuple(net.outputs), blobs=blobs, not_compared=missing,
        seconds={"reference": round(t1 - t0, 3), "onnx": round(t2 - t1, 3)}, runtime=ran.runtime,
        runtime_version=ran.version)
    if result.failures:
        result.first_divergence = _divergence(net, result.failures[0], {b.tensor: b for b in blobs})
    return result


def _load_onnx(model) -> tuple[onnx.ModelProto, str]:
    if isinstance(model, onnx.ModelProto):
        return model, "<in-memory model>"
    from ..errors import InputFileError
    from ..safe_io import MAX_ONNX_BYTES, read_input_bytes
    try:
        data = read_input_bytes(model, "ONNX model", MAX_ONNX_BYTES)
    except InputFileError as e:
        raise ValidationError(str(e)) from None
    try:
        return onnx.load_model_from_string(data), str(model)
    except Exception as e:  # bytes that are not a ModelProto
        raise ValidationError(f"cannot read ONNX model {model}: {e}") from None


def _check_onnx_inputs(model: onnx.ModelProto, values: Mapping[str, np.ndarray]) -> None:
    inits = {i.name for i in model.graph.initializer}
    for vi in model.graph.input:
        if vi.name in inits:
            continue
        if vi.name not in values:
            raise ValidationError(f"the ONNX model has an input '{vi.name}' that the Caffe net does not "
                                  f"(net inputs: {', '.join(values)})")
        dims = [d.dim_value if d.HasField("dim_value") else None for d in vi.type.tensor_type.shape.dim]
        shape = values[vi.name].shape
        if len(dims) != len(shape) or any(d is not None and d != s for d, s in zip(dims, shape)):
            raise ValidationError(f"ONNX input '{vi.name}' has shape {['?' if d is None else d for d in dims]}, "
                                  f"the Caffe net's is {list(shape)}: give --input-shape as at conversion")


def provider_options(provider: str) -> dict[str, dict[str, str]]:
    """TF32 off: its 10-bit mantissa would hide real differences behind loose bounds."""
    if provider == "cpu":
        return {}
    os.environ.setdefault("NVIDIA_TF32_OVERRIDE", "0")  # TensorRT has no option of its own for it
    return {"CUDAExecutionProvider": {"use_tf32": "0"}}


def _run_onnx(model: onnx.ModelProto, net: Net, values, provider: str, timeout: float | None,
              untrusted_dirs: Sequence[str] = (), data_dir: str | None = None, runtime: str = "onnxruntime"):
    """Every tensor of the net from ``runtime`` (validators/runtimes) and the RunResult it came in."""
    from .onnx_runner import expose_tensors
    from .runtimes import get_runtime
    rt = get_runtime(runtime)
    exposed = expose_tensors(model, net.tensors, {n: t.shape for n, t in net.tensors.items()})
    feeds = {i.name for i in model.graph.input}
    try:
        ran = rt.run(exposed, {k: v for k, v in values.items() if k in feeds}, provider=provider,
                     provider_options=provider_options(provider), timeout=timeout,
                     untrusted_dirs=untrusted_dirs, external_data_dir=data_dir)
        return {**values, **ran.values}, ran
    except Caffe2OnnxError:
        raise
    except Exception as e:  # the runtime's own exception types
        raise ValidationError(f"{runtime} cannot run the model: {e}") from None


def _divergence(net: Net, first: BlobStats, by_tensor: Mapping[str, BlobStats]) -> dict[str, Any]:
    layer = net.layer(first.layer)
    ins = []
    for tensor in layer.inputs:
        b = by_tensor.get(tensor)
        status = ("net input" if tensor in net.inputs else "not compared") if b is None else \
            ("matched" if b.passed else "diverged")
        ins.append({"tensor": tensor, "status": status, "max_abs": None if b is None else b.max_abs})
    return {"layer": layer.name, "type": layer.type, "params": jsonable(layer.params), "tensor": first.tensor,
            "blob": first.blob, "bottoms": list(layer.bottoms), "inputs": ins}
