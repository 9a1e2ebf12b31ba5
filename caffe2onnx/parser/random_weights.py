"""Seeded random weights for structure-only conversion and testing.

Scaled so that deep nets keep activations of order one (He-style fan-in
scaling), and so that BatchNorm variances are positive: parity checks on
random weights then compare meaningful numbers rather than overflow or zeros.
"""
from __future__ import annotations

import numpy as np

from ..ir import Shape


def random_blobs(rng: np.random.Generator, layer_type: str, shapes: list[Shape]) -> list[np.ndarray]:
    if layer_type == "BatchNorm":
        c = shapes[0]
        return [rng.normal(0.0, 0.1, c).astype(np.float32),
                rng.uniform(0.5, 1.5, c).astype(np.float32),
                np.ones(shapes[2], np.float32)]
    if layer_type == "BN" and len(shapes) == 4:  # PSPNet's BN: slope, bias, mean, variance
        slope, bias, mean, var = shapes
        return [rng.uniform(0.5, 1.5, slope).astype(np.float32), rng.uniform(-0.2, 0.2, bias).astype(np.float32),
                rng.normal(0.0, 0.1, mean).astype(np.float32), rng.uniform(0.5, 1.5, var).astype(np.float32)]
    out = []
    for i, shape in enumerate(shapes):
        if i == 0 and len(shape) >= 2:
            fan_in = int(np.prod(shape[1:]))
            std = np.sqrt(2.0 / max(fan_in, 1))
            out.append(rng.normal(0.0, std, shape).astype(np.float32))
        elif i == 0 and layer_type in ("Scale", "PReLU"):
            out.append(rng.uniform(0.5, 1.5, shape).astype(np.float32))
        else:
            out.append(rng.uniform(-0.2, 0.2, shape).astype(np.float32))
    return out
