"""Shape-moving and combining layers against real Caffe, at every opset in OPSETS."""
import pytest

from harness import OPSETS, check_case, check_dynamic_batch, input_layer


def _layer(type_: str, body: str = "", bottoms=("data",), tops=("out",), name: str = "l") -> str:
    b = " ".join(f'bottom: "{x}"' for x in bottoms)
    t = " ".join(f'top: "{x}"' for x in tops)
    return f'layer {{ name: "{name}" type: "{type_}" {b} {t} {body} }}\n'


def _ip(body: str) -> str:
    return _layer("InnerProduct", f"inner_product_param {{ {body} }}")


# case id -> (input shapes in bottom order, layer text); inputs are named data, data1, data2...
CASES = {
    "ip_2d": ([(3, 10)], _ip("num_output: 4")),
    "ip_4d": ([(2, 3, 4, 5)], _ip("num_output: 7")),
    "ip_no_bias": ([(2, 3, 4, 5)], _ip("num_output: 7 bias_term: false")),
    "ip_transpose": ([(2, 3, 4, 5)], _ip("num_output: 6 transpose: true")),
    "ip_axis2": ([(2, 3, 4, 5)], _ip("num_output: 6 axis: 2")),
    "ip_axis3_transpose": ([(2, 3, 4, 5)], _ip("num_output: 2 axis: 3 transpose: true")),
    "ip_axis_neg1": ([(2, 3, 4, 5)], _ip("num_output: 3 axis: -1 bias_term: false")),
    "ip_axis0": ([(2, 3, 4)], _ip("num_output: 5 axis: 0")),
    "ip_3d_batch1": ([(1, 6, 5)], _ip("num_output: 4")),
    "concat_c": ([(2, 3, 4, 5), (2, 2, 4, 5), (2, 1, 4, 5)],
                 _layer("Concat", "", ("data", "data1", "data2"))),
    "concat_axis_neg": ([(2, 3, 4), (2, 3, 2)], _layer("Concat", "concat_param { axis: -1 }", ("data", "data1"))),
    "concat_dim0": ([(2, 3, 4), (1, 3, 4)], _layer("Concat", "concat_param { concat_dim: 0 }", ("data", "data1"))),
    "concat_2d": ([(2, 3), (2, 5)], _layer("Concat", "", ("data", "data1"))),
    "flatten": ([(2, 3, 4, 5)], _layer("Flatten")),
    "flatten_axis2": ([(2, 3, 4, 5)], _layer("Flatten", "flatten_param { axis: 2 }")),
    "flatten_mid": ([(2, 3, 4, 5)], _layer("Flatten", "flatten_param { axis: 1 end_axis: 2 }")),
    "flatten_neg": ([(2, 3, 4, 5)], _layer("Flatten", "flatten_param { axis: -3 end_axis: -2 }")),
    "flatten_axis0": ([(2, 3, 4)], _layer("Flatten", "flatten_param { axis: 0 }")),
    "reshape_copy_infer": ([(2, 3, 4, 5)], _layer("Reshape", "reshape_param { shape { dim: 0 dim: -1 dim: 10 } }")),
    "reshape_axis_num_axes": ([(2, 6, 4, 5)],
                              _layer("Reshape", "reshape_param { shape { dim: 2 dim: 3 } axis: 1 num_axes: 1 }")),
    "reshape_axis_neg": ([(2, 6, 4)], _layer("Reshape", "reshape_param { shape { dim: 2 dim: 2 } axis: -2 }")),
    "reshape_to_2d": ([(2, 3, 4)], _layer("Reshape", "reshape_param { shape { dim: 6 dim: -1 } }")),
    "slice_points": ([(2, 6, 3, 4)], _layer("Slice", "slice_param { slice_point: 1 slice_point: 4 }",
                                            tops=("a", "b", "c"))),
    "slice_equal": ([(2, 6, 3, 4)], _layer("Slice", "slice_param { axis: 1 }", tops=("a", "b", "c"))),
    "slice_neg_axis": ([(2, 3, 8)], _layer("Slice", "slice_param { axis: -1 slice_point: 5 }", tops=("a", "b"))),
    "slice_dim_legacy": ([(4, 3, 2)], _layer("Slice", "slice_param { slice_dim: 0 slice_point: 1 }", tops=("a", "b"))),
    "slice_2d": ([(3, 8)], _layer("Slice", "slice_param { axis: 1 }", tops=("a", "b", "c", "d"))),
    "crop_default": ([(2, 3, 8, 9), (2, 3, 5, 4)], _layer("Crop", "", ("data", "data1"))),
    "crop_offsets": ([(2, 3, 8, 9), (2, 3, 5, 4)],
                     _layer("Crop", "crop_param { axis: 2 offset: 1 offset: 3 }", ("data", "data1"))),
    "crop_axis1_one_offset": ([(2, 5, 8, 9), (2, 3, 5, 4)],
                              _layer("Crop", "crop_param { axis: 1 offset: 2 }", ("data", "data1"))),
    "crop_neg_axis": ([(2, 3, 8, 9), (1, 1, 1, 6)],
                      _layer("Crop", "crop_param { axis: -1 offset: 2 }", ("data", "data1"))),
    "crop_3d": ([(2, 7, 6), (2, 4, 6)], _layer("Crop", "crop_param { axis: 1 offset: 3 offset: 0 }",
                                             ("data", "data1"))),
    "permute_nhwc": ([(2, 3, 4, 5)], _layer("Permute", "permute_param { order: 0 order: 2 order: 3 order: 1 }")),
    "permute_partial": ([(2, 3, 4, 5)], _layer("Permute", "permute_param { order: 0 order: 3 }")),
    "permute_3d": ([(2, 3, 4)], _layer("Permute", "permute_param { order: 2 order: 0 order: 1 }")),
    "softmax": ([(2, 5, 3, 4)], _layer("Softmax")),
    "softmax_last": ([(2, 5, 3, 4)], _layer("Softmax", "softmax_param { axis: 3 }")),
    "softmax_axis2": ([(2, 5, 3, 4)], _layer("Softmax", "softmax_param { axis: 2 }")),
    "softmax_axis0": ([(3, 5, 4)], _layer("Softmax", "softmax_param { axis: 0 }")),
    "softmax_neg": ([(2, 5, 3, 4)], _layer("Softmax", "softmax_param { axis: -2 }")),
    "softmax_2d": ([(4, 10)], _layer("Softmax")),
    "eltwise_sum": ([(2, 3, 4, 5)] * 2, _layer("Eltwise", "", ("data", "data1"))),
    "eltwise_sum_coeff": ([(2, 3, 4, 5)] * 3, _layer(
        "Eltwise", "eltwise_param { operation: SUM coeff: 0.5 coeff: -1 coeff: 2.5 }", ("data", "data1", "data2"))),
    "eltwise_sub": ([(2, 3, 4)] * 2, _layer("Eltwise", "eltwise_param { coeff: 1 coeff: -1 }", ("data", "data1"))),
    "eltwise_prod": ([(2, 3, 4, 5)] * 3, _layer("Eltwise", "eltwise_param { operation: PROD }",
                                                ("data", "data1", "data2"))),
    "eltwise_max": ([(2, 3, 4, 5)] * 3, _layer("Eltwise", "eltwise_param { operation: MAX }",
                                               ("data", "data1", "data2"))),
    "eltwise_max_2d": ([(3, 7)] * 2, _layer("Eltwise", "eltwise_param { operation: MAX }", ("data", "data1"))),
}

# In place (top = bottom 0), Caffe's SUM and MAX fill the top first, so bottom 0 reads as 0 / -FLT_MAX.
INPLACE = {
    "sum": ([(2, 3, 4)] * 2, _layer("Eltwise", "", ("data", "data1"), ("data",))),
    "sum_coeff": ([(2, 3, 4)] * 3, _layer("Eltwise", "eltwise_param { coeff: 2 coeff: -0.5 coeff: 3 }",
                                          ("data", "data1", "data2"), ("data",))),
    "prod": ([(2, 3, 4)] * 3, _layer("Eltwise", "eltwise_param { operation: PROD }",
                                     ("data", "data1", "data2"), ("data",))),
    "max": ([(2, 3, 4)] * 3, _layer("Eltwise", "eltwise_param { operation: MAX }",
                                    ("data", "data1", "data2"), ("data",))),
    "max_neg_inf": ([(2, 3, 4)] * 2, _layer("Power", "power_param { scale: 0 shift: 0 power: -1 }", ("data1",),
                                            ("ninf",), "ninf_pos") + _layer("Power", "power_param { scale: -1 }",
                                            ("ninf",), ("ninf",), "neg")
                    + _layer("Eltwise", "eltwise_param { operation: MAX }", ("data", "ninf"), ("data",))),
}


def _inputs(shapes) -> str:
    return "".join(input_layer(s, "data" if i == 0 else f"data{i}").replace('name: "input"', f'name: "input{i}"')
                   for i, s in enumerate(shapes))


@pytest.mark.parametrize("case", sorted(CASES))
def test_common(tmp_path, case):
    shapes, text = CASES[case]
    check_case(tmp_path, f"common_{case}", _inputs(shapes) + text, {})


@pytest.mark.parametrize("case", sorted(INPLACE))
def test_eltwise_in_place(tmp_path, case):
    shapes, text = INPLACE[case]
    check_case(tmp_path, f"common_eltwise_inplace_{case}", _inputs(shapes) + text, {})


def test_layer_chain(tmp_path):
    """A small net mixing the layers: every intermediate blob is compared."""
    text = _inputs([(2, 4, 6, 6), (1, 1, 4, 5)]) + "".join([
        _layer("Slice", "slice_param { slice_point: 2 }", ("data",), ("s0", "s1"), "slice"),
        _layer("Eltwise", "eltwise_param { coeff: 2 coeff: 0.5 }", ("s0", "s1"), ("e",), "elt"),
        _layer("Crop", "crop_param { axis: 2 offset: 1 offset: 0 }", ("e", "data1"), ("c",), "crop"),
        _layer("Permute", "permute_param { order: 0 order: 2 order: 3 order: 1 }", ("c",), ("p",), "perm"),
        _layer("Flatten", "flatten_param { axis: 2 }", ("p",), ("f",), "flat"),
        _layer("InnerProduct", "inner_product_param { num_output: 5 axis: 2 }", ("f",), ("ip",), "ip"),
        _layer("Softmax", "softmax_param { axis: 1 }", ("ip",), ("prob",), "prob"),
        _layer("Concat", "concat_param { axis: 2 }", ("prob", "ip"), ("cat",), "cat"),
        _layer("Reshape", "reshape_param { shape { dim: 0 dim: -1 } }", ("cat",), ("out",), "reshape"),
    ])
    check_case(tmp_path, "common_chain", text, {})


DYNAMIC_NET = _inputs([(1, 4, 6, 5)]) + "".join([
    _layer("BatchNorm", "", ("data",), ("bn",), "bn"),
    _layer("BatchNorm", "batch_norm_param { use_global_stats: false }", ("data",), ("bnb",), "bn_batch"),
    _layer("Scale", "scale_param { bias_term: true }", ("bn",), ("bn",), "scale"),
    _layer("PReLU", "", ("bn",), ("bn",), "prelu"),
    _layer("MVN", "mvn_param { across_channels: true }", ("bnb",), ("mvn",), "mvn"),
    _layer("Power", "power_param { power: 3 scale: 0 shift: 0.5 }", ("mvn",), ("const",), "const"),
    _layer("Eltwise", "eltwise_param { coeff: 1 coeff: -2 coeff: 0.5 }", ("bn", "mvn", "const"), ("sum",), "sum"),
    _layer("Slice", "slice_param { slice_point: 1 }", ("sum",), ("s0", "s1"), "slice"),
    _layer("InnerProduct", "inner_product_param { num_output: 3 }", ("s0",), ("q",), "q"),
    _layer("Scale", "scale_param { axis: 0 }", ("s1", "q"), ("prod",), "scale_by_q"),
    _layer("Crop", "crop_param { axis: 1 offset: 1 offset: 0 offset: 0 }", ("prod", "s0"), ("crop",), "crop"),
    _layer("Flatten", "", ("crop",), ("cropf",), "crop_flat"),
    _layer("Permute", "permute_param { order: 0 order: 2 order: 3 order: 1 }", ("prod",), ("p",), "perm"),
    _layer("Flatten", "flatten_param { axis: 2 }", ("p",), ("f",), "flat"),
    _layer("InnerProduct", "inner_product_param { num_output: 4 axis: 2 }", ("f",), ("ip2",), "ip2"),
    _layer("Softmax", "softmax_param { axis: 1 }", ("ip2",), ("prob",), "prob"),
    _layer("InnerProduct", "inner_product_param { num_output: 5 }", ("sum",), ("ip",), "ip"),
    _layer("Reshape", "reshape_param { shape { dim: 0 dim: -1 } }", ("prob",), ("flat_prob",), "reshape"),
    _layer("Concat", "", ("flat_prob", "ip", "cropf"), ("out",), "cat"),
])


@pytest.mark.parametrize("opset", OPSETS)
def test_dynamic_batch_against_caffe(tmp_path, opset):
    """A --dynamic-batch model run on batch 1 and 3 gives real Caffe's numbers at each batch size."""
    check_dynamic_batch(tmp_path, DYNAMIC_NET, opset, seed=5)