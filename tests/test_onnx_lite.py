"""caffe2onnx.onnx_lite: the same models as onnx.helper builds, without importing onnx."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import helper, numpy_helper

from caffe2onnx import onnx_lite
from caffe2onnx.converter import max_opset
from harness import OPSETS

ROOT = Path(__file__).resolve().parents[1]


def test_ir_version_table_matches_onnx():
    for opset in range(11, max_opset() + 1):
        ids = [helper.make_opsetid("", opset)]
        assert onnx_lite.find_min_ir_version_for(ids) == helper.find_min_ir_version_for(ids), opset
    assert onnx_lite.opset_version() == onnx.defs.onnx_opset_version()


@pytest.mark.parametrize("attrs", [dict(axis=1), dict(alpha=np.float32(0.5), beta=2), dict(pads=[1, 0, 1, 0]),
                                   dict(scales=[1.5, 2.0]), dict(mode="constant"), dict(to=1, keepdims=True)])
def test_nodes_and_tensors_match_onnx_helper(attrs):
    assert onnx_lite.make_node("Op", ["a", "b"], ["c"], name="n", **attrs) == \
        helper.make_node("Op", ["a", "b"], ["c"], name="n", **attrs)
    for arr in (np.arange(6, dtype=np.float32).reshape(2, 3), np.array([0, -1, 5], np.int64), np.float32(2.5)):
        assert onnx_lite.from_array(arr, "t") == numpy_helper.from_array(arr, "t")
    for shape in ([1, 3, "N"], [], None):
        assert onnx_lite.make_tensor_value_info("x", 1, shape) == helper.make_tensor_value_info("x", 1, shape)


def test_conversion_imports_no_onnx_and_onnx_reuses_its_modules(tmp_path):
    """In a fresh process: convert (checks included) without `import onnx`; then onnx loads the result."""
    code = f"""
import sys
from caffe2onnx.converter import convert_file
convert_file({str(tmp_path / 'g.onnx')!r}, {str(ROOT / 'examples/googlenet/deploy.prototxt')!r}, random_weights=0)
assert 'onnx' not in sys.modules and 'ml_dtypes' not in sys.modules, sorted(m for m in sys.modules if 'onnx' in m)
import caffe2onnx.onnx_lite as lite, onnx, onnx.helper
assert onnx.ModelProto is lite.ModelProto and onnx.onnx_cpp2py_export is lite.C
onnx.checker.check_model(onnx.load({str(tmp_path / 'g.onnx')!r}), full_check=True)
"""
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                       env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert r.returncode == 0, r.stderr[-2000:]


def test_help_imports_neither_numpy_nor_protobuf():
    code = "import sys\nfrom caffe2onnx.cli import main\ntry:\n    main(['--help'])\nexcept SystemExit:\n    pass\n" \
           "assert not {'numpy', 'google.protobuf', 'onnx'} & set(sys.modules), sorted(sys.modules)"
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                       env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert r.returncode == 0, r.stderr[-2000:]
