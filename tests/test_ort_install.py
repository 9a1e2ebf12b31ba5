"""The GPU install: onnxruntime and onnxruntime-gpu side by side are diagnosed, once, with the fix;
``--provider cuda`` fails with that diagnosis; after the fix only the GPU build is installed and
offers CUDA. The last test installs ``.[gpu]`` into a fresh venv to show all of it for real."""
import json
import os
import shutil
import subprocess
import sys
import warnings

import pytest

from caffe2onnx.validators import onnx_runner, ort_install
from harness import ROOT

FIX = "pip uninstall -y onnxruntime onnxruntime-gpu && pip install onnxruntime-gpu"


@pytest.fixture
def both_installed(monkeypatch):
    monkeypatch.setattr(ort_install, "ort_distributions", lambda: {"onnxruntime": "1.32.0", "onnxruntime-gpu": "1.31.1"})
    ort_install.conflict.cache_clear()
    ort_install._warn_once.cache_clear()
    yield
    ort_install.conflict.cache_clear()
    ort_install._warn_once.cache_clear()


def test_the_installed_onnxruntime_is_found():
    import onnxruntime
    found = ort_install.ort_distributions()
    assert found and all(n.startswith(("onnxruntime", "ort-nightly")) for n in found)
    if len(found) == 1:
        assert ort_install.conflict() is None
        assert next(iter(found.values())) == onnxruntime.__version__


class _Dist:
    def __init__(self, top_level, files=()):
        self.top_level, self.files = top_level, list(files)

    def read_text(self, name):
        return self.top_level if name == "top_level.txt" else None


def test_only_distributions_of_the_onnxruntime_package_count():
    assert ort_install.provides_onnxruntime(_Dist("onnxruntime\n"), "onnxruntime-gpu")
    assert not ort_install.provides_onnxruntime(_Dist("onnxruntime_extensions\n"), "onnxruntime-extensions")
    assert ort_install.provides_onnxruntime(_Dist(None, ["onnxruntime/__init__.py"]), "ort-nightly-gpu")
    assert not ort_install.provides_onnxruntime(_Dist(None, ["onnxruntime_genai/__init__.py"]), "onnxruntime-genai")
    assert not ort_install.provides_onnxruntime(_Dist(None, ["onnxruntime/x.py"]), "something-else")


def test_diagnosis_names_both_and_the_fix(both_installed):
    msg = ort_install.conflict()
    assert "\n" not in msg
    assert msg.startswith("onnxruntime 1.32.0 and onnxruntime-gpu 1.31.1 are installed together")
    assert msg.endswith(FIX)


def test_fix_command_keeps_the_accelerated_build():
    assert ort_install.fix_command(["onnxruntime", "onnxruntime-gpu"]) == FIX
    assert ort_install.fix_command(["onnxruntime-directml", "onnxruntime"]) == (
        "pip uninstall -y onnxruntime onnxruntime-directml && pip install onnxruntime-directml")


def test_provider_choice_warns_once_and_cuda_fails_with_the_diagnosis(both_installed):
    import onnxruntime
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert onnx_runner.resolve_provider("cpu") == ["CPUExecutionProvider"]
        onnx_runner.resolve_provider("cpu")
    assert [type(w.message) for w in caught] == [ort_install.OnnxruntimeInstallWarning]
    assert str(caught[0].message).endswith(FIX)
    if "CUDAExecutionProvider" in onnxruntime.get_available_providers():
        pytest.skip("this onnxruntime offers CUDA: an explicit cuda choice succeeds")
    with pytest.raises(onnx_runner.ProviderUnavailable) as e:
        onnx_runner.resolve_provider("cuda")
    assert str(e.value) == f"CUDAExecutionProvider requested but not available: {ort_install.conflict()}"


# Run inside the fresh venv: what is installed, what `import onnxruntime` gives, what we say.
_REPORT = """
import json, warnings
warnings.simplefilter("always")
import onnxruntime
from caffe2onnx.validators import onnx_runner, ort_install
out = {"dists": ort_install.ort_distributions(), "conflict": ort_install.conflict(),
       "imported": onnxruntime.__version__, "providers": onnxruntime.get_available_providers()}
try:
    out["cuda"] = onnx_runner.resolve_provider("cuda")
except onnx_runner.ProviderUnavailable as e:
    out["cuda"] = str(e)
print(json.dumps(out))
"""


def _run(cmd, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600, **kw)


def _pip(venv, *args):
    # This environment's pip works on the venv (--python): no pip bootstrap in the venv, ~10 s less.
    r = _run([sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"),
              "--disable-pip-version-check", "-q", *args])
    if r.returncode and any(s in r.stderr for s in ("No matching distribution", "NewConnectionError",
                                                     "Could not fetch", "Temporary failure in name resolution")):
        pytest.skip(f"the package index is not reachable here: {r.stderr.strip().splitlines()[-1]}")
    assert r.returncode == 0, r.stderr[-3000:]


def _report(venv, tmp_path) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    r = _run([str(venv / "bin" / "python"), "-c", _REPORT], cwd=tmp_path, env=env)  # the installed copy
    assert r.returncode == 0, r.stderr[-3000:]
    return json.loads(r.stdout.strip().splitlines()[-1])


@pytest.fixture
def scratch(tmp_path):
    yield tmp_path
    shutil.rmtree(tmp_path, ignore_errors=True)  # the venv holds ~1 GB of onnxruntime builds


@pytest.mark.slow
def test_gpu_extra_in_a_fresh_venv(scratch):
    """pip install '.[gpu]' gives both builds and the diagnosis; the fix command leaves the GPU build."""
    tmp_path = scratch
    src = tmp_path / "src"  # a copy: building in the checkout would leave build/ and egg-info there
    files = _run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=ROOT).stdout.split()
    if not files:
        pytest.skip("not a git checkout: cannot tell the project's files")
    for rel in files:
        if rel.startswith("caffe2onnx/") or rel in ("pyproject.toml", "README.md", "LICENSE"):
            (src / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / rel, src / rel)
    venv = tmp_path / "venv"
    r = _run([sys.executable, "-m", "venv", "--without-pip", str(venv)])
    assert r.returncode == 0, r.stderr
    _pip(venv, "install", "--no-compile", f"{src}[gpu]")  # --no-compile: no .pyc for 1000 files, ~10 s
    before = _report(venv, tmp_path)
    assert set(before["dists"]) == {"onnxruntime", "onnxruntime-gpu"}
    assert before["conflict"].endswith(FIX) and "onnxruntime-gpu" in before["conflict"]
    if "CUDAExecutionProvider" in before["providers"]:  # the GPU build's files happened to win
        assert before["cuda"] == ["CUDAExecutionProvider", "CPUExecutionProvider"]
    else:  # the CPU build's files won: --provider cuda fails with the diagnosis
        assert before["cuda"] == f"CUDAExecutionProvider requested but not available: {before['conflict']}"
    _pip(venv, "uninstall", "-y", "onnxruntime", "onnxruntime-gpu")  # the fix, as the diagnosis says
    _pip(venv, "install", "--no-compile", "onnxruntime-gpu")
    after = _report(venv, tmp_path)
    assert list(after["dists"]) == ["onnxruntime-gpu"] and after["conflict"] is None
    assert after["imported"] == after["dists"]["onnxruntime-gpu"]
    assert "CUDAExecutionProvider" in after["providers"]
    assert after["cuda"] == ["CUDAExecutionProvider", "CPUExecutionProvider"]
