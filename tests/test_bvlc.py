"""BVLC's remaining inference layers against real Caffe (ArgMax, Reduction, Tile, Embed, SPP,
Parameter, Im2col, BatchReindex, multi-top Input); Filter refused."""
import numpy as np
import pytest

import caffe2onnx
from caffe2onnx.validators.caffe_reference import CaffeRejected, run_caffe
from harness import check_case, check_dynamic_batch, input_layer, live_caffe


def _l(type_: str, param: str = "", body: str = "", bottom="data", top="out", name="l") -> str:
    bottoms = " ".join(f'bottom: "{b}"' for b in ([bottom] if isinstance(bottom, str) else bottom))
    p = f"{param} {{ {body} }}" if param else ""
    return f'layer {{ name: "{name}" type: "{type_}" {bottoms} top: "{top}" {p} }}\n'


_AM, _RED, _TILE = ("ArgMax", "argmax_param"), ("Reduction", "reduction_param"), ("Tile", "tile_param")
_SPP, _IM2COL = ("SPP", "spp_param"), ("Im2col", "convolution_param")
_STEP = _l("Threshold", "threshold_param", "threshold: 0.3", top="step", name="step")  # 0/1: many ties

# case id -> (input shape, layers)
CASES = {
    "argmax_default": ((2, 3, 4, 5), _l(*_AM)),
    "argmax_2d": ((4, 6), _l(*_AM)),
    "argmax_top3_maxval": ((2, 3, 4, 5), _l(*_AM, "top_k: 3 out_max_val: true")),
    "argmax_axis1_top2": ((2, 3, 4, 5), _l(*_AM, "axis: 1 top_k: 2")),
    "argmax_axis_last_maxval": ((2, 3, 4, 5), _l(*_AM, "axis: -1 top_k: 3 out_max_val: true")),
    "argmax_ties_flat": ((3, 2, 5), _STEP + _l(*_AM, "top_k: 6 out_max_val: true", bottom="step")),
    "argmax_ties_axis": ((3, 8, 2), _STEP + _l(*_AM, "axis: 1 top_k: 5", bottom="step")),
    "reduction_sum_all": ((2, 3, 4), _l(*_RED)),
    "reduction_asum_axis1": ((2, 3, 4, 5), _l(*_RED, "operation: ASUM axis: 1")),
    "reduction_sumsq_coeff": ((2, 3, 4, 5), _l(*_RED, "operation: SUMSQ axis: 2 coeff: -0.5")),
    "reduction_mean_coeff": ((2, 3, 4, 5), _l(*_RED, "operation: MEAN axis: 1 coeff: 2")),
    "reduction_mean_last": ((2, 3, 7), _l(*_RED, "operation: MEAN axis: -1")),
    "tile_axis1": ((2, 3, 4), _l(*_TILE, "tiles: 3")),
    "tile_axis0": ((2, 3, 4), _l(*_TILE, "axis: 0 tiles: 2")),
    "tile_last": ((2, 3, 4), _l(*_TILE, "axis: -1 tiles: 4")),
    # ArgMax over axis 1 makes valid integer indices in [0, 5) for Embed and BatchReindex.
    "embed": ((3, 5, 4), _l(*_AM, "axis: 1", top="idx", name="idx")
              + _l("Embed", "embed_param", "num_output: 6 input_dim: 5", bottom="idx")),
    "embed_no_bias": ((2, 7, 3), _l(*_AM, "axis: 1", top="idx", name="idx")
                      + _l("Embed", "embed_param", "num_output: 4 input_dim: 7 bias_term: false", bottom="idx")),
    "spp_max3": ((2, 3, 7, 9), _l(*_SPP, "pyramid_height: 3")),
    "spp_ave2": ((2, 3, 6, 5), _l(*_SPP, "pyramid_height: 2 pool: AVE")),
    "spp_height1": ((2, 3, 5, 4), _l(*_SPP, "pyramid_height: 1 pool: AVE")),
    "parameter": ((2, 3), 'layer { name: "p" type: "Parameter" top: "p" parameter_param { shape { dim: 2 dim: 3 } } }\n'
                  + _l("Eltwise", bottom=["data", "p"])),
    "im2col": ((2, 3, 6, 7), _l(*_IM2COL, "kernel_size: 3 stride: 2 pad: 1")),
    "im2col_rect_dilated": ((1, 2, 7, 8), _l(*_IM2COL, "kernel_h: 2 kernel_w: 3 dilation: 2 pad_h: 0 pad_w: 1")),
    "im2col_1x1": ((2, 4, 3, 3), _l(*_IM2COL, "kernel_size: 1")),
    "batch_reindex": ((5, 4), _l(*_AM, "axis: 1", top="idx2", name="idx")
                      + 'layer { name: "flat" type: "Reshape" bottom: "idx2" top: "idx" reshape_param { shape { dim: -1 } } }\n'
                      + 'layer { name: "d" type: "Input" top: "items" input_param { shape { dim: 4 dim: 3 dim: 2 } } }\n'
                      + _l("BatchReindex", bottom=["items", "idx"])),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bvlc_layer(tmp_path, case):
    shape, text = CASES[case]
    check_case(tmp_path, f"bvlc_{case}", input_layer(shape) + text, {})


def test_input_with_several_tops(tmp_path):
    text = ('layer { name: "in" type: "Input" top: "a" top: "b" top: "c" input_param { '
            'shape { dim: 2 dim: 3 dim: 4 } shape { dim: 2 dim: 5 dim: 4 } shape { dim: 2 dim: 1 dim: 4 } } }\n'
            'layer { name: "cat" type: "Concat" bottom: "b" bottom: "a" bottom: "c" top: "out" }\n')
    check_case(tmp_path, "bvlc_input_three_tops", text, {})
    text = ('layer { name: "in" type: "Input" top: "a" top: "b" input_param { shape { dim: 2 dim: 3 } } }\n'
            'layer { name: "sum" type: "Eltwise" bottom: "a" bottom: "b" top: "out" }\n')
    check_case(tmp_path, "bvlc_input_shared_shape", text, {})


@pytest.mark.parametrize("text, match, caffe_refuses", [
    (_l("Filter", bottom=["data", "sel"]), "non-zero values in the selector 'sel'", False),
    (_l(*_SPP, "pyramid_height: 2"), "level 1 needs pad", True),
    (_l(*_AM, "top_k: 9"), "top_k", True),
    (_l(*_SPP, "pyramid_height: 2 pool: STOCHASTIC"), "STOCHASTIC", False),
])
def test_refused(tmp_path, text, match, caffe_refuses):
    path = tmp_path / "net.prototxt"
    path.write_text(input_layer((2, 1, 5, 1)) + input_layer((2, 1), "sel").replace('"input"', '"input2"') + text)
    with pytest.raises(caffe2onnx.Caffe2OnnxError, match=match):
        caffe2onnx.load(path, random_weights=0)
    if caffe_refuses and live_caffe():  # the shapes we refuse are ones real Caffe aborts on
        with pytest.raises(CaffeRejected):
            run_caffe(path, None, {"data": np.ones((2, 1, 5, 1), np.float32), "sel": np.ones((2, 1), np.float32)})


@pytest.mark.parametrize("case", ["argmax_top3_maxval", "reduction_asum_axis1", "embed", "spp_max3", "im2col",
                                  "argmax_axis_last_maxval"])
def test_dynamic_batch(tmp_path, case):
    shape, text = CASES[case]
    check_dynamic_batch(tmp_path, input_layer(shape) + text, opset=17)


def test_parameter_refuses_dynamic_batch(tmp_path):
    from caffe2onnx.converter import build_model
    shape, text = CASES["parameter"]
    path = tmp_path / "net.prototxt"
    path.write_text(input_layer(shape) + text)
    with pytest.raises(caffe2onnx.UnsupportedLayerError, match="dynamic-batch"):
        build_model(caffe2onnx.load(path, random_weights=0), opset=17, dynamic_batch=True)
