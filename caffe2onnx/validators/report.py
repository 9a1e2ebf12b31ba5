"""Renders a ``ValidationResult``: a readable table, JSON, and JUnit XML.

JSON (``--json FILE``), schema ``caffe2onnx.validate/1``::

    {"schema", "passed": bool, "net", "onnx", "reference": "caffe|numpy|opencv",
     "runtime": {"name": "onnxruntime|openvino|reference", "version"},
     "provider": where it ran (onnxruntime's provider, OpenVINO's device, "numpy"), "atol", "rtol",
     "inputs": {name: {"shape", "source"}}, "outputs": [tensor, ...],
     "counts": {"compared", "passed", "failed", "not_compared"},
     "first_divergence": null or {"layer", "type", "params": {normalised layer params},
                                  "tensor", "blob", "bottoms", "inputs": [{"tensor", "status", "max_abs"}],
                                  "max_abs", "max_rel", "mean_abs", "cosine"},
     "blobs": [{"tensor", "blob", "layer", "type", "shape", "max_abs", "max_rel", "mean_abs",
                "cosine", "ref_max", "top1", "top5", "passed", "note"}, ...] (execution order),
     "not_compared": [tensor, ...], "seconds": {"reference", "onnx"}}

Numbers that are not finite are written as the strings "inf", "-inf" or "nan".
JUnit (``--junit FILE``): one ``<testsuite name="caffe2onnx.validate">`` with one
``<testcase classname="<net>.<layer>" name="<tensor>">`` per compared blob, a
``<failure>`` carrying the metrics for each blob out of tolerance.
"""
from __future__ import annotations

import json
import math
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from .check import ValidationResult
from .compare import BlobStats

SCHEMA = "caffe2onnx.validate/1"


def _num(x: float | None) -> Any:
    if x is None or math.isfinite(x):
        return x
    return "nan" if math.isnan(x) else ("inf" if x > 0 else "-inf")


def _e(x: float | None) -> str:
    return "-" if x is None else (f"{x:.2e}" if math.isfinite(x) else str(x))


def _blob_json(b: BlobStats) -> dict[str, Any]:
    return {"tensor": b.tensor, "blob": b.blob, "layer": b.layer, "type": b.layer_type, "shape": list(b.shape),
            "max_abs": _num(b.max_abs), "max_rel": _num(b.max_rel), "mean_abs": _num(b.mean_abs),
            "cosine": _num(b.cosine), "ref_max": _num(b.ref_max), "top1": b.top1, "top5": b.top5,
            "passed": b.passed, "note": b.note}


def to_json(r: ValidationResult) -> dict[str, Any]:
    first = None
    if r.first_divergence:
        b = r.failures[0]
        first = {**r.first_divergence, "max_abs": _num(b.max_abs), "max_rel": _num(b.max_rel),
                 "mean_abs": _num(b.mean_abs), "cosine": _num(b.cosine)}
        first["inputs"] = [{**i, "max_abs": _num(i["max_abs"])} for i in first["inputs"]]
    return {"schema": SCHEMA, "passed": r.passed, "net": r.net, "onnx": r.onnx, "reference": r.reference,
            "runtime": {"name": r.runtime, "version": r.runtime_version}, "provider": r.provider,
            "atol": r.atol, "rtol": r.rtol, "inputs": r.inputs, "outputs": list(r.outputs),
            "counts": {"compared": len(r.blobs), "passed": len(r.blobs) - len(r.failures),
                       "failed": len(r.failures), "not_compared": len(r.not_compared)},
            "first_divergence": first, "blobs": [_blob_json(b) for b in r.blobs],
            "not_compared": list(r.not_compared), "seconds": r.seconds}


def write_json(r: ValidationResult, path: str | Path) -> None:
    Path(path).write_text(json.dumps(to_json(r), indent=2) + "\n")


def _failure_text(b: BlobStats, r: ValidationResult) -> str:
    if b.layer_type == "DetectionOutput":
        return f"{b.note} (atol {r.atol:g})"
    if b.note.startswith("shape"):
        return b.note
    text = (f"max abs diff {_e(b.max_abs)} > atol {r.atol:g} and max rel diff {_e(b.max_rel)} > rtol {r.rtol:g} "
            f"(mean abs {_e(b.mean_abs)}, cosine {b.cosine:.6f}, reference max |x| {_e(b.ref_max)})")
    return f"{text}; {b.note}" if b.note else text


def to_junit(r: ValidationResult) -> str:
    suite = ET.Element("testsuite", name="caffe2onnx.validate", tests=str(len(r.blobs)),
                       failures=str(len(r.failures)), errors="0", skipped="0",
                       time=f"{sum(r.seconds.values()):.3f}")
    props = ET.SubElement(suite, "properties")
    for key, value in (("net", r.net), ("onnx", r.onnx), ("reference", r.reference),
                       ("runtime", r.runtime), ("runtime_version", r.runtime_version), ("provider", r.provider),
                       ("atol", f"{r.atol:g}"), ("rtol", f"{r.rtol:g}")):
        ET.SubElement(props, "property", name=key, value=str(value))
    for b in r.blobs:
        case = ET.SubElement(suite, "testcase", classname=f"{r.net}.{b.layer}", name=b.tensor, time="0")
        if not b.passed:
            text = _failure_text(b, r)
            failure = ET.SubElement(case, "failure", message=f"layer '{b.layer}' ({b.layer_type}): {text}",
                                    type="NumericalMismatch")
            failure.text = text
    root = ET.Element("testsuites", name="caffe2onnx validate", tests=suite.get("tests"),
                      failures=suite.get("failures"), errors="0")
    root.append(suite)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def write_junit(r: ValidationResult, path: str | Path) -> None:
    Path(path).write_text(to_junit(r))


def _rows(blobs: list[BlobStats]) -> list[list[str]]:
    rows = [["layer", "type", "tensor", "shape", "max abs", "max rel", "mean abs", "cosine", "top1", "top5", ""]]
    for b in blobs:
        pct = lambda x: "-" if x is None else f"{100 * x:.0f}%"  # noqa: E731
        rows.append([b.layer or "", b.layer_type or "", b.tensor, "x".join(map(str, b.shape)), _e(b.max_abs),
                     _e(b.max_rel), _e(b.mean_abs), "-" if not math.isfinite(b.cosine) else f"{b.cosine:.6f}",
                     pct(b.top1), pct(b.top5), "ok" if b.passed else "FAIL"])
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [[c.ljust(w) for c, w in zip(row, widths)] for row in rows]


def _where(r: ValidationResult) -> str:
    if r.runtime == "onnxruntime":
        return f"onnxruntime {r.runtime_version} provider {r.provider}".replace("  ", " ")
    return f"runtime {r.runtime} {r.runtime_version} on {r.provider}"


def format_table(r: ValidationResult, layers: bool = False) -> str:
    """The report for people: summary, first divergence, then every blob (``layers``) or the outputs."""
    verdict = "PASS" if r.passed else "FAIL"
    lines = [f"caffe2onnx validate: {verdict}  net '{r.net}' vs {r.onnx}",
             f"  reference {r.reference}, {_where(r)}, atol {r.atol:g}, rtol {r.rtol:g} "
             "(a blob passes if max abs diff <= atol or max abs diff / max |reference| <= rtol)"]
    for name, info in r.inputs.items():
        lines.append(f"  input {name} [{'x'.join(map(str, info['shape']))}]: {info['source']}")
    lines.append(f"  compared {len(r.blobs)} tensors: {len(r.blobs) - len(r.failures)} pass, "
                 f"{len(r.failures)} fail" + (f"; {len(r.not_compared)} not produced by both sides "
                                             f"({', '.join(r.not_compared[:5])}{', ...' if len(r.not_compared) > 5 else ''})"
                                             if r.not_compared else ""))
    if r.first_divergence:
        d, b = r.first_divergence, r.failures[0]
        params = d["params"]
        ptext = ", ".join(f"{k}={v}" for k, v in params.items()) if isinstance(params, dict) else \
            ("" if params is None else str(params))
        lines += [f"  FIRST DIVERGING LAYER: '{d['layer']}' (type {d['type']}), output '{d['tensor']}' "
                  f"(blob '{d['blob']}')",
                  f"    {_failure_text(b, r)}",
                  f"    params: {ptext or '(none)'}",
                  "    inputs: " + (", ".join(f"{i['tensor']} {i['status']}" + (f" (max abs {_e(i['max_abs'])})" if
                                                                            i["max_abs"] is not None else "")
                                        for i in d["inputs"]) or "(none)")]
    shown = r.blobs if layers else [b for b in r.blobs if b.tensor in r.outputs]
    if r.first_divergence and not layers and r.failures[0] not in shown:
        shown = [r.failures[0]] + shown
    lines.append("")
    lines += ["  " + "  ".join(row).rstrip() for row in _rows(shown)]
    lines += [f"  {b.tensor} ({b.layer_type}): {b.note} (atol {r.atol:g})" for b in shown
              if b.layer_type == "DetectionOutput"]
    if not layers:
        lines.append("  (net outputs" + (" and the first divergence" if r.first_divergence else "")
                     + "; --layers shows every layer)")
    return "\n".join(lines)
