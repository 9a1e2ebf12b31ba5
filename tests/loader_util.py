"""Small helpers for the loader tests."""
from __future__ import annotations

from pathlib import Path

import caffe2onnx


def write(tmp_path: Path, text: str, name: str = "net.prototxt") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def load_text(tmp_path: Path, text: str, **kw):
    return caffe2onnx.load(write(tmp_path, text), **kw)
