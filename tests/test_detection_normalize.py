"""Normalize (SSD's L2 normalisation) against real Caffe, at every opset in OPSETS."""
import numpy as np
import pytest

from harness import check_case, input_layer


def _norm(body: str = "") -> str:
    return (input_layer((2, 5, 4, 3)) + 'layer { name: "l" type: "Normalize" bottom: "data" top: "out" '
            + (f"norm_param {{ {body} }}" if body else "") + " }\n")


def _scale(values):
    """Trained SSD nets scale conv4_3 by ~20: blob 0 set to `values` (one, or one per channel)."""
    def tweak(weights):
        weights["l"] = [np.asarray(values, np.float32).reshape(np.shape(weights["l"][0]))]
    return tweak


# case -> (norm_param body, weight tweak, input scale)
CASES = {
    "defaults": ("", None, 1.0),  # across_spatial, channel_shared, eps 1e-10
    "per_pixel_shared": ("across_spatial: false", _scale(20.0), 1.0),
    "per_pixel_per_channel": ("across_spatial: false channel_shared: false", _scale([20, 10, 5, 1, 0.5]), 1.0),
    "across_per_channel": ("channel_shared: false", _scale([1, 2, 3, 4, 5]), 1.0),
    "eps_large": ("across_spatial: false eps: 0.5", None, 1.0),
    "eps_large_across": ("eps: 2.0", None, 0.1),
    "eps_dominates": ("across_spatial: false eps: 0.01", _scale(20.0), 1e-3),  # eps inside the sqrt
    "tiny_inputs_default_eps": ("across_spatial: false channel_shared: false", None, 1e-6),
    "scale_filler_ignored_with_weights": ('across_spatial: false scale_filler { type: "constant" value: 20 }',
                                          _scale(3.0), 1.0),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_normalize(tmp_path, case):
    body, tweak, scale = CASES[case]
    check_case(tmp_path, f"normalize_{case}", _norm(body), {}, tweak_weights=tweak, input_scale=scale,
               max_abs=1e-4 * max(1.0, 20 * scale), mean_abs=1e-5)
