"""Per-blob comparison of an ONNX tensor against the reference (Caffe's) value.

Metrics, all computed in float64 from the float32 values:

* ``max_abs``  = max |onnx - ref|
* ``max_rel``  = max_abs / max |ref|  (relative to the reference blob's magnitude,
  not element-wise: element-wise relative error explodes on values near zero,
  which every ReLU'd or soft-maxed blob is full of)
* ``mean_abs`` = mean |onnx - ref|
* ``cosine``   = <onnx, ref> / (|onnx| |ref|)  (1.0 when both are all zeros)
* ``top1`` / ``top5`` for classifier outputs: the fraction of batch rows whose
  arg-max agrees, and whose set of 5 best classes is the same (order ignored).

Pass rule: ``max_abs <= atol or max_rel <= rtol``; see ``tolerances`` for the
defaults and why. Top-k agreement is reported, never gated: two classes within
rounding of each other may swap places while the numbers agree to the last bits.
A shape mismatch, or NaN/inf where the other side has a different value, fails.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np

from .tolerances import CPU_ATOL, CPU_RTOL, GPU_ATOL, GPU_RTOL  # noqa: F401 (re-exported)


def tolerances(provider: str, atol: float | None, rtol: float | None) -> tuple[float, float]:
    """The (atol, rtol) in force: explicit values win, else the defaults for the provider that ran."""
    gpu = provider in ("CUDAExecutionProvider", "TensorrtExecutionProvider")
    return (atol if atol is not None else (GPU_ATOL if gpu else CPU_ATOL),
            rtol if rtol is not None else (GPU_RTOL if gpu else CPU_RTOL))


@dataclass(frozen=True)
class BlobStats:
    """One compared tensor: where it comes from, the metrics, and the verdict."""

    tensor: str
    blob: str
    layer: str | None  # producing Caffe layer; None for a net input
    layer_type: str | None
    shape: tuple[int, ...]
    max_abs: float
    max_rel: float
    mean_abs: float
    cosine: float
    ref_max: float  # max |ref|, the magnitude max_rel is relative to
    top1: float | None
    top5: float | None
    passed: bool
    note: str = ""


_PROB_NAME = re.compile(r"prob|softmax|score|pred|cls|logit", re.IGNORECASE)


def classifier_view(name: str, ref: np.ndarray, is_output: bool) -> np.ndarray | None:
    """(N, classes) view of a classifier output, or None: 2-D or (N, C, 1, 1) outputs
    that are named like probabilities, sum to ~1 per row, or have >= 5 classes."""
    if ref.ndim == 4 and ref.shape[2:] == (1, 1):
        ref = ref.reshape(ref.shape[:2])
    if ref.ndim != 2 or ref.shape[1] < 2:
        return None
    sums_to_one = bool(np.all(ref >= 0)) and bool(np.allclose(ref.sum(axis=1), 1.0, atol=1e-3))
    if _PROB_NAME.search(name) or sums_to_one or (is_output and ref.shape[1] >= 5):
        return ref
    return None


def _topk_agreement(got: np.ndarray, ref: np.ndarray) -> tuple[float, float | None]:
    top1 = float(np.mean(np.argmax(got, 1) == np.argmax(ref, 1)))
    if ref.shape[1] <= 5:
        return top1, None  # the top-5 set would be every class
    best = lambda a: np.sort(np.argsort(-a, axis=1, kind="stable")[:, :5], axis=1)  # noqa: E731
    return top1, float(np.mean(np.all(best(got) == best(ref), axis=1)))


def compare_blob(tensor: str, got: np.ndarray, ref: np.ndarray, atol: float, rtol: float, *,
                 blob: str = "", layer: str | None = None, layer_type: str | None = None,
                 is_output: bool = False) -> BlobStats:
    """Compares one tensor; ``ref`` is the reference (Caffe) value."""
    got, ref = np.asarray(got), np.asarray(ref)
    meta = dict(tensor=tensor, blob=blob or tensor, layer=layer, layer_type=layer_type, shape=tuple(ref.shape))
    if got.shape != ref.shape:
        if got.size == ref.size and got.squeeze().shape == ref.squeeze().shape:
            got = got.reshape(ref.shape)  # e.g. (N, C) vs Caffe's (N, C, 1, 1)
        else:
            nan = math.nan
            return BlobStats(**meta, max_abs=nan, max_rel=nan, mean_abs=nan, cosine=nan, ref_max=nan,
                             top1=None, top5=None, passed=False,
                             note=f"shape {list(got.shape)} vs reference {list(ref.shape)}")
    a, b = got.astype(np.float64), ref.astype(np.float64)
    note = ""
    same_nonfinite = (np.isnan(a) & np.isnan(b)) | (np.isinf(a) & (a == b))
    finite = np.isfinite(a) & np.isfinite(b)
    bad = ~(finite | same_nonfinite)
    if bad.any():
        note = f"{int(bad.sum())} non-finite value(s) differ"
    diff = np.where(finite, np.abs(a - b), 0.0)
    diff[bad] = np.inf
    max_abs = float(diff.max()) if diff.size else 0.0
    mean_abs = float(diff.mean()) if diff.size else 0.0
    ref_max = float(np.abs(b[np.isfinite(b)]).max()) if np.isfinite(b).any() else 0.0
    max_rel = max_abs / ref_max if ref_max > 0 else (0.0 if max_abs == 0 else math.inf)
    af, bf = np.where(finite, a, 0.0).ravel(), np.where(finite, b, 0.0).ravel()
    na, nb = float(np.linalg.norm(af)), float(np.linalg.norm(bf))
    cosine = 1.0 if na == nb == 0 else (float(af @ bf) / (na * nb) if na and nb else 0.0)
    top1 = top5 = None
    view = classifier_view(blob or tensor, b, is_output)
    if view is not None and not bad.any():
        top1, top5 = _topk_agreement(a.reshape(view.shape), view)
    passed = not bad.any() and (max_abs <= atol or max_rel <= rtol)
    return BlobStats(**meta, max_abs=max_abs, max_rel=max_rel, mean_abs=mean_abs, cosine=cosine,
                     ref_max=ref_max, top1=top1, top5=top5, passed=passed, note=note)
