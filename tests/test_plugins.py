"""Plugins: register_layer, the caffe2onnx.layers entry points (an installed package via a
dist-info on sys.path), `caffe2onnx layers`, broken plugins, and Python layers never imported."""
import sys
import textwrap

import numpy as np
import pytest

import caffe2onnx
from caffe2onnx import plugins
from caffe2onnx.cli import main
from caffe2onnx.converter import build_model, check_model
from caffe2onnx.errors import UnsupportedLayerError
from caffe2onnx.validators.check import validate
from harness import input_layer

SOFTSIGN_PLUGIN = '''
import numpy as np
import caffe2onnx
from caffe2onnx.layers import Inferred, Spec

class SoftsignSpec(Spec):
    @staticmethod
    def infer(params, shapes):
        return Inferred([shapes[0]], [])

def mapping(layer, g):
    """y = x / (1 + |x|)"""
    g.node("Softsign", list(layer.inputs), list(layer.outputs))

def reference(layer, xs):
    """x / (1 + |x|) in float32."""
    return [xs[0] / (np.float32(1) + np.abs(xs[0]))]

def register():
    caffe2onnx.register_layer("Softsign", spec=SoftsignSpec, mapping=mapping, reference=reference)
'''


def install_package(site, dist: str, module: str, code: str, entry_points: dict[str, str]) -> None:
    """A package as pip leaves it: the module and a dist-info with entry_points.txt."""
    (site / f"{module}.py").write_text(code)
    info = site / f"{dist.replace('-', '_')}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n")
    lines = "".join(f"{k} = {v}\n" for k, v in entry_points.items())
    (info / "entry_points.txt").write_text(f"[caffe2onnx.layers]\n{lines}")


@pytest.fixture
def site(tmp_path, monkeypatch):
    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))
    with plugins.isolated():
        yield site
    for name in [m for m in sys.modules if m in ("softsign_plugin", "broken_plugin", "scaledtanh_plugin")]:
        del sys.modules[name]


def _net(tmp_path, layer_type: str, extra: str = "") -> str:
    path = tmp_path / "net.prototxt"
    path.write_text(input_layer((2, 3, 4)) + f'layer {{ name: "l" type: "{layer_type}" bottom: "data" '
                    f'top: "out" {extra} }}\n')
    return str(path)


def test_entry_point_plugin_converts_and_validates(tmp_path, site, capsys):
    install_package(site, "softsign-plugin", "softsign_plugin", SOFTSIGN_PLUGIN, {"Softsign": "softsign_plugin:register"})
    assert "softsign_plugin" not in sys.modules
    net = caffe2onnx.load(_net(tmp_path, "Softsign"))  # the unknown type loads its plugin lazily
    assert "softsign_plugin" in sys.modules
    assert plugins.ORIGINS["Softsign"] == plugins.Origin("softsign-plugin", "Softsign")
    model = build_model(net, opset=17)
    check_model(model)
    x = np.linspace(-4, 4, 24, dtype=np.float32).reshape(2, 3, 4)
    result = validate(_net(tmp_path, "Softsign"), None, model, reference="numpy", inputs={"data": x}, net=net)
    assert result.passed and result.reference == "numpy"
    # The plugin's NumPy reference is a real check: a wrong model fails it.
    bad = build_model(net, opset=17)
    bad.graph.node[0].op_type = "Tanh"
    assert not validate(None, None, bad, reference="numpy", inputs={"data": x}, net=net).passed
    assert main(["layers"]) == 0
    out = capsys.readouterr().out
    assert "Softsign" in out and "plugin Softsign from softsign-plugin" in out


def test_broken_plugin_is_one_line_naming_it(tmp_path, site, capsys):
    install_package(site, "broken-plugin", "broken_plugin", "raise RuntimeError('boom at import')\n",
                    {"Broken": "broken_plugin:register"})
    with pytest.raises(plugins.PluginError) as e:
        caffe2onnx.load(_net(tmp_path, "Broken"))
    msg = str(e.value)
    assert "\n" not in msg and "plugin 'Broken'" in msg and "broken-plugin" in msg and "boom at import" in msg
    assert main(["layers"]) == 2  # the listing still prints; the broken plugin is named on stderr
    captured = capsys.readouterr()
    assert "Convolution" in captured.out and "plugin 'Broken'" in captured.err


def test_plugin_that_registers_nothing(tmp_path, site):
    install_package(site, "broken-plugin", "broken_plugin", "def register():\n    pass\n",
                    {"Nothing": "broken_plugin:register"})
    with pytest.raises(plugins.PluginError, match="did not register a spec for layer type 'Nothing'"):
        caffe2onnx.load(_net(tmp_path, "Nothing"))


def test_register_layer_in_user_code_and_refusals(tmp_path, site):
    ns = {}
    exec(SOFTSIGN_PLUGIN, ns)
    caffe2onnx.register_layer("Softsign", spec=ns["SoftsignSpec"], mapping=ns["mapping"], reference=ns["reference"],
                              source="my-team")
    assert plugins.ORIGINS["Softsign"].source == "my-team"
    build_model(caffe2onnx.load(_net(tmp_path, "Softsign")), opset=11)
    with pytest.raises(plugins.PluginError, match="already has a registered spec and mapping and reference"):
        caffe2onnx.register_layer("Softsign", spec=ns["SoftsignSpec"], mapping=ns["mapping"], reference=ns["reference"])
    with pytest.raises(plugins.PluginError, match="already has a registered mapping"):
        caffe2onnx.register_layer("ReLU", mapping=ns["mapping"])


def test_unknown_type_points_to_plugins(tmp_path, site):
    with pytest.raises(UnsupportedLayerError, match="unknown layer type \\(a plugin can add it"):
        caffe2onnx.load(_net(tmp_path, "NoSuchLayer"))


def test_builtin_sources_come_from_docstrings(capsys):
    assert main(["layers"]) == 0
    out = capsys.readouterr().out
    assert "Source: BVLC" in out
    assert plugins.origin("X", "semantics\n\n    Source: SSD fork, prior_box_layer.cpp\n").source == \
        "SSD fork, prior_box_layer.cpp"


PY_NET = textwrap.dedent('''
    layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 1 dim: 3 } } }
    layer { name: "py" type: "Python" bottom: "data" top: "out"
            python_param { module: "evil_layer_mod" layer: "EvilLayer" } }
''')


def test_python_layer_module_is_never_imported(tmp_path, site, monkeypatch, capsys):
    marker = tmp_path / "imported.txt"
    (site / "evil_layer_mod.py").write_text(f"open({str(marker)!r}, 'w').write('ran')\n"
                                            "class EvilLayer: pass\n")
    net = tmp_path / "py.prototxt"
    net.write_text(PY_NET)
    with pytest.raises(UnsupportedLayerError) as e:
        caffe2onnx.load(net)
    msg = str(e.value)
    assert "layer 'py'" in msg and "evil_layer_mod" in msg and "EvilLayer" in msg and "plugin" in msg
    assert main(["convert", str(net), "--random-weights", "0", "-o", str(tmp_path / "m.onnx"), "--validate"]) != 0
    assert main(["validate", str(net), str(tmp_path / "w.caffemodel"), str(tmp_path / "m.onnx")]) == 2
    for ref in ("caffe", "numpy", "auto"):
        main(["validate", str(net), str(tmp_path / "w.caffemodel"), str(tmp_path / "m.onnx"), "--reference", ref])
    assert "evil_layer_mod" in capsys.readouterr().err
    assert not marker.exists() and "evil_layer_mod" not in sys.modules


def test_python_layer_plugin_never_runs_caffe(tmp_path, site, capsys):
    """A plugin may convert a Python layer from its python_param; real Caffe (which would import the
    module) is then refused as a reference, and the module stays untouched."""
    from caffe2onnx.layers import Spec
    from caffe2onnx.validators.references import CaffeReference, ReferenceUnavailable

    marker = tmp_path / "imported.txt"
    (site / "evil_layer_mod.py").write_text(f"open({str(marker)!r}, 'w').write('ran')\n")

    class PythonIdentity(Spec):
        param = "python_param"
        fields = frozenset({"module", "layer"})

    caffe2onnx.register_layer("Python", spec=PythonIdentity, mapping=lambda l, g: g.node("Identity", list(l.inputs),
                              list(l.outputs)), reference=lambda l, xs: [xs[0].copy()])
    net_path = tmp_path / "py.prototxt"
    net_path.write_text(PY_NET)
    net = caffe2onnx.load(net_path)
    model = build_model(net, opset=17)
    x = {"data": np.ones((1, 3), np.float32)}
    assert validate(net_path, None, model, reference="numpy", inputs=x, net=net).passed
    with pytest.raises(ReferenceUnavailable, match="layer 'py' is a Python layer"):
        CaffeReference().run(net, net_path, None, x)  # refused before any Caffe process starts
    assert not marker.exists() and "evil_layer_mod" not in sys.modules
