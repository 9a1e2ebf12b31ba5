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

import dataclasses
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


@dataclass(frozen=True)
class DetectionMatch:
    """A DetectionOutput blob compared as a set of rows [image, label, score, x1, y1, x2, y2]."""

    matched: int
    reference: int  # rows in the reference
    got: int  # rows in the ONNX output
    max_abs: float  # over the matched pairs' score and coordinates
    first_unmatched: tuple[float, ...] | None  # a reference row without a partner
    tied_at_cut: int = 0  # unmatched rows that are all at their image's lowest kept score, on both sides

    @property
    def passed(self) -> bool:
        return self.reference == self.got and self.matched + self.tied_at_cut == self.reference

    def note(self) -> str:
        text = f"{self.matched}/{self.reference} detections matched"
        if self.tied_at_cut:
            text += (f", {self.tied_at_cut} other(s) differ only at the keep_top_k cut, among scores within "
                     "atol of the lowest kept one")
        if self.got != self.reference:
            text += f" (ONNX has {self.got} rows, the reference {self.reference})"
        if self.first_unmatched is not None and not self.passed:
            text += "; first unmatched reference row [" + ", ".join(f"{v:.6g}" for v in self.first_unmatched) + "]"
        return text


def match_detections(got: np.ndarray, ref: np.ndarray, atol: float, keep_top_k: int | None = None) -> DetectionMatch:
    """Pairs each reference row with an unused ONNX row of the same image and label whose score and
    box agree within atol (rows with equal scores may come in either order); greedy, best first.
    With the layer's keep_top_k, images cut there may differ in rows at the cut (see _tied_at_cut)."""
    g = np.asarray(got, np.float64).reshape(-1, 7)
    r = np.asarray(ref, np.float64).reshape(-1, 7)
    used, missed = np.zeros(len(g), bool), []
    matched, worst = 0, 0.0
    for k, row in enumerate(r):
        diff = np.abs(g[:, 2:] - row[2:]).max(axis=1) if len(g) else np.zeros(0)
        ok = (g[:, 0] == row[0]) & (g[:, 1] == row[1]) & (diff <= atol) & ~used
        if ok.any():
            i = int(np.flatnonzero(ok)[np.argmin(diff[ok])])
            used[i], matched, worst = True, matched + 1, max(worst, float(diff[i]))
        else:
            missed.append(k)
    first = tuple(float(v) for v in r[missed[0]]) if missed else None
    return DetectionMatch(matched, len(r), len(g), worst, first, _tied_at_cut(r[missed], g[~used], r, g, atol, keep_top_k))


def _tied_at_cut(ref_left: np.ndarray, got_left: np.ndarray, r: np.ndarray, g: np.ndarray, atol: float,
                 keep_top_k: int | None) -> int:
    """len(ref_left) if every unmatched row is in an image that both sides cut at keep_top_k rows,
    scores within atol of that image's lowest kept score, and ties there with another kept row of
    its side: scores equal to rounding then compete for the last places, and a runtime's last-bit
    rounding (or Caffe's std::sort among equal scores) decides which are kept."""
    if not keep_top_k or keep_top_k < 0 or not len(ref_left) or len(ref_left) != len(got_left):
        return 0
    for left, side in ((ref_left, r), (got_left, g)):
        for row in left:
            ri, gi = r[r[:, 0] == row[0], 2], g[g[:, 0] == row[0], 2]
            own = side[side[:, 0] == row[0], 2]
            if not (len(ri) == len(gi) == keep_top_k and row[2] - min(ri.min(), gi.min()) <= atol
                    and (np.abs(own - row[2]) <= atol).sum() >= 2):
                return 0
    return len(ref_left)


def compare_detections(tensor: str, got: np.ndarray, ref: np.ndarray, atol: float, keep_top_k: int | None = None,
                       **meta) -> BlobStats:
    """A DetectionOutput top: passes when every row is matched (see match_detections); max_abs is
    over the matched pairs, the other metrics compare the rows in order (nan if the counts differ)."""
    m = match_detections(got, ref, atol, keep_top_k)
    if np.asarray(got).shape == np.asarray(ref).shape:
        s = compare_blob(tensor, got, ref, math.inf, math.inf, **meta)
    else:
        s = compare_blob(tensor, ref, ref, math.inf, math.inf, **meta)
        s = dataclasses.replace(s, mean_abs=math.nan, cosine=math.nan)
    ref_max = s.ref_max
    return dataclasses.replace(s, shape=tuple(np.asarray(ref).shape), max_abs=m.max_abs,
                               max_rel=m.max_abs / ref_max if ref_max else m.max_abs, top1=None, top5=None,
                               passed=m.passed, note=m.note())
