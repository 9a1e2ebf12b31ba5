"""BatchNorm, Scale, Bias and MVN against real Caffe, at every opset in OPSETS."""
import numpy as np
import pytest

import caffe2onnx
from caffe2onnx.converter import build_model
from caffe2onnx.errors import UnsupportedLayerError
from harness import check_case, input_layer


def _layer(type_: str, body: str = "", bottoms=("data",), top: str = "out") -> str:
    b = " ".join(f'bottom: "{x}"' for x in bottoms)
    return f'layer {{ name: "l" type: "{type_}" {b} top: "{top}" {body} }}\n'


def _bn(body: str = "", top: str = "out") -> str:
    return _layer("BatchNorm", f"batch_norm_param {{ {body} }}" if body else "", top=top)


def _factor(value: float):
    """Stores statistics as Caffe's training does: mean and var multiplied by the factor."""
    def tweak(weights):
        mean, var, _ = weights["l"]
        weights["l"] = [mean * np.float32(value), var * np.float32(value), np.array([value], np.float32)]
    return tweak


def _scale(body: str = "", bottoms=("data",), top: str = "out") -> str:
    return _layer("Scale", f"scale_param {{ {body} }}" if body else "", bottoms, top)


def _bias(body: str = "", bottoms=("data",)) -> str:
    return _layer("Bias", f"bias_param {{ {body} }}" if body else "", bottoms)


def _mvn(body: str = "") -> str:
    return _layer("MVN", f"mvn_param {{ {body} }}" if body else "")


# case id -> (input shapes: data, data1, ...; layer text; weight tweak or None)
CASES = {
    "bn_4d": ([(2, 3, 4, 5)], _bn(), None),
    "bn_2d": ([(4, 6)], _bn(), None),
    "bn_3d": ([(2, 3, 7)], _bn(), None),
    "bn_eps": ([(2, 3, 4, 5)], _bn("eps: 0.1"), None),
    "bn_global_explicit": ([(2, 3, 4, 5)], _bn("use_global_stats: true"), None),
    "bn_factor": ([(2, 3, 4, 5)], _bn(), _factor(0.37)),
    "bn_factor_big": ([(2, 4)], _bn("eps: 0.001"), _factor(999.5)),
    "bn_factor_zero": ([(2, 3, 4, 5)], _bn(), _factor(0.0)),
    "bn_in_place": ([(2, 3, 4, 5)], _bn(top="data"), None),
    "bn_batch_stats": ([(2, 3, 4, 5)], _bn("use_global_stats: false"), None),
    "bn_batch_stats_2d": ([(5, 3)], _bn("use_global_stats: false eps: 0.01"), None),
    "bn_batch_stats_3d": ([(3, 2, 6)], _bn("use_global_stats: false"), None),
    "scale": ([(2, 3, 4, 5)], _scale(), None),
    "scale_bias": ([(2, 3, 4, 5)], _scale("bias_term: true"), None),
    "scale_in_place": ([(2, 3, 4, 5)], _scale("bias_term: true", top="data"), None),
    "scale_2d": ([(3, 4)], _scale("bias_term: true"), None),
    "scale_3d_axis2": ([(2, 3, 4)], _scale("axis: 2"), None),
    "scale_axis0_two_axes": ([(2, 3, 4, 5)], _scale("axis: 0 num_axes: 2 bias_term: true"), None),
    "scale_num_axes0": ([(2, 3, 4, 5)], _scale("num_axes: 0 bias_term: true"), None),
    "scale_num_axes_all": ([(2, 3, 4, 5)], _scale("num_axes: -1"), None),
    "scale_neg_axis": ([(2, 3, 4, 5)], _scale("axis: -2 bias_term: true"), None),
    "scale_bottom1": ([(2, 3, 4, 5), (3, 4)], _scale("", ("data", "data1")), None),
    "scale_bottom1_bias": ([(2, 3, 4, 5), (3,)], _scale("bias_term: true", ("data", "data1")), None),
    "scale_bottom1_axis0": ([(2, 3, 4, 5), (2, 3)], _scale("axis: 0", ("data", "data1")), None),
    "scale_bottom1_tail": ([(2, 3, 4, 5), (4, 5)], _scale("axis: -2", ("data", "data1")), None),
    "scale_bottom1_full": ([(2, 3, 4), (2, 3, 4)], _scale("axis: 0 bias_term: true", ("data", "data1")), None),
    "bias": ([(2, 3, 4, 5)], _bias(), None),
    "bias_2d": ([(3, 4)], _bias(), None),
    "bias_axis2_two_axes": ([(2, 3, 4, 5)], _bias("axis: 2 num_axes: 2"), None),
    "bias_num_axes0": ([(2, 3, 4, 5)], _bias("num_axes: 0"), None),
    "bias_num_axes_all": ([(2, 3, 4)], _bias("axis: 1 num_axes: -1"), None),
    "bias_neg_axis": ([(2, 3, 4, 5)], _bias("axis: -1"), None),
    "bias_bottom1": ([(2, 3, 4, 5), (3, 4)], _bias("", ("data", "data1")), None),
    "bias_bottom1_tail": ([(2, 3, 4), (4,)], _bias("axis: 2", ("data", "data1")), None),
    "mvn": ([(2, 3, 4, 5)], _mvn(), None),
    "mvn_mean_only": ([(2, 3, 4, 5)], _mvn("normalize_variance: false"), None),
    "mvn_across": ([(2, 3, 4, 5)], _mvn("across_channels: true"), None),
    "mvn_across_mean_only": ([(2, 3, 4, 5)], _mvn("across_channels: true normalize_variance: false"), None),
    "mvn_eps": ([(3, 2, 1, 6)], _mvn("eps: 0.5"), None),
    "mvn_single_pixel": ([(2, 3, 1, 1)], _mvn("eps: 0.01"), None),
}

# Caffe's MVN reads missing trailing axes as 1 and writes a 4-D top.
MVN_UNDER_4D = {
    "mvn_3d": ([(2, 3, 5)], _mvn()),
    "mvn_2d_across": ([(3, 4)], _mvn("across_channels: true")),
    "mvn_1d_mean_only": ([(5,)], _mvn("normalize_variance: false")),
}


def _inputs(shapes) -> str:
    return "".join(input_layer(s, "data" if i == 0 else f"data{i}").replace('name: "input"', f'name: "input{i}"')
                   for i, s in enumerate(shapes))


@pytest.mark.parametrize("case", sorted(CASES))
def test_normalization(tmp_path, case):
    shapes, text, tweak = CASES[case]
    check_case(tmp_path, f"normalization_{case}", _inputs(shapes) + text, {}, tweak_weights=tweak)


@pytest.mark.parametrize("case", sorted(MVN_UNDER_4D))
def test_mvn_under_4d(tmp_path, case):
    shapes, text = MVN_UNDER_4D[case]
    path = tmp_path / "shape.prototxt"
    path.write_text(_inputs(shapes) + text)
    assert caffe2onnx.load(path).shape("out") == (*shapes[0], *(1,) * (4 - len(shapes[0])))
    check_case(tmp_path, f"normalization_{case}", _inputs(shapes) + text, {})


@pytest.mark.parametrize("field, shapes, text", [
    ("scale_param.axis", [(2, 3, 4)], _scale("axis: 0 num_axes: 1")),
    ("bias_param.axis", [(2, 3, 4)], _bias("axis: 0")),
    ("scale_param.axis", [(2, 3, 4), (2, 3)], _scale("axis: 0 bias_term: true", ("data", "data1"))),
])
def test_batch_axis_param_rejected_with_dynamic_batch(tmp_path, field, shapes, text):
    """A parameter blob over the batch axis fixes the batch size: --dynamic-batch must refuse it."""
    path = tmp_path / "net.prototxt"
    path.write_text(_inputs(shapes) + text)
    net = caffe2onnx.load(path, random_weights=0)
    build_model(net, opset=17)
    with pytest.raises(UnsupportedLayerError, match=field):
        build_model(net, opset=17, dynamic_batch=True)
