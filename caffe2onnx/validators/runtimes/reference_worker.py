"""Runs an ONNX model in onnx's ReferenceEvaluator in its own isolated, killable process.

``python -I reference_worker.py --sys-path=P MODEL.onnx INPUTS.npz OUT.npz META.json OPTIONS_JSON``:
every graph output goes to OUT.npz, {"version"} to META.json. OPTIONS ``data_dir``: where
the model's ONNX external data lies. With ``{"lrn_override": true}``
LRN runs as written here from the ONNX spec, in place of onnx's own (onnx issue 7805: up to
onnx 1.23.2 it sums the channel window only for channels below the batch size). It imports
nothing from caffe2onnx, so the parent can stop it at its time limit.
"""
from __future__ import annotations

import json
import os
import sys


def spec_lrn():
    """LRN per the ONNX spec: y = x / (bias + alpha/size * sum_{window of c} x^2)^beta, window
    [c - floor((size-1)/2), c + ceil((size-1)/2)] over axis 1, clipped to the channels."""
    import numpy as np
    from onnx.reference.op_run import OpRun

    class LRN(OpRun):
        op_domain = ""

        def _run(self, x, alpha=None, beta=None, bias=None, size=None):
            if x.ndim < 3:
                raise RuntimeError(f"LRN needs an (N, C, D1, ...) input, not shape {x.shape}")
            lo, hi = (size - 1) // 2, size - 1 - (size - 1) // 2
            square = x.astype(np.float64) ** 2
            padded = np.pad(square, [(0, 0), (lo, hi)] + [(0, 0)] * (x.ndim - 2))
            csum = np.concatenate([np.zeros_like(padded[:, :1]), np.cumsum(padded, axis=1)], axis=1)
            window = csum[:, size:] - csum[:, :-size]  # window[:, c] = sum of square[:, c-lo .. c+hi]
            y = x / (bias + (alpha / size) * window) ** beta
            return (y.astype(x.dtype),)

    return LRN


def main(argv: list[str]) -> int:
    if argv and argv[0].startswith("--sys-path="):
        sys.path[:0] = [p for p in argv[0].split("=", 1)[1].split(os.pathsep) if p]
        argv = argv[1:]
    sys.path[:] = [p for p in sys.path if p not in ("", ".")]
    model_path, inputs_path, out_path, meta_path, options = argv
    import numpy as np
    import onnx
    from onnx.reference import ReferenceEvaluator

    try:
        opts = json.loads(options)
        new_ops = [spec_lrn()] if opts.get("lrn_override") else None
        # external data is read from the model's own folder (onnx refuses links to it)
        model = onnx.load(model_path, load_external_data=False)
        if opts.get("data_dir"):
            from onnx.external_data_helper import load_external_data_for_model
            load_external_data_for_model(model, opts["data_dir"])
        sess = ReferenceEvaluator(model, new_ops=new_ops)
        with np.load(inputs_path, allow_pickle=False) as data:
            feeds = {k: data[k] for k in data.files}
        names = list(sess.output_names)
        values = sess.run(names, feeds)
    except Exception as e:  # any failure inside the evaluator: one line for the parent
        print(f"onnx reference evaluator: {type(e).__name__}: {e}".replace("\n", " "), file=sys.stderr)
        return 3
    np.savez(out_path, **{n: np.asarray(v) for n, v in zip(names, values)})
    with open(meta_path, "w") as f:
        json.dump({"version": onnx.__version__}, f)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
