"""Runs an ONNX model in OpenVINO's CPU plugin, in f32, in its own isolated, killable process.

``python -I openvino_worker.py --sys-path=P MODEL.onnx INPUTS.npz OUT.npz META.json OPTIONS_JSON``:
every graph output goes to OUT.npz, {"device", "version"} to META.json. It imports nothing
from caffe2onnx, so the parent can stop it at its time limit (``validate --timeout``).
"""
from __future__ import annotations

import json
import os
import sys


def main(argv: list[str]) -> int:
    if argv and argv[0].startswith("--sys-path="):
        sys.path[:0] = [p for p in argv[0].split("=", 1)[1].split(os.pathsep) if p]
        argv = argv[1:]
    sys.path[:] = [p for p in sys.path if p not in ("", ".")]
    model_path, inputs_path, out_path, meta_path, options = argv
    device = json.loads(options)["device"]
    import numpy as np
    import openvino as ov

    try:
        core = ov.Core()
        # f32 explicitly: on CPUs with bf16 support the plugin's default precision is bf16
        compiled = core.compile_model(core.read_model(model_path), device, {"INFERENCE_PRECISION_HINT": "f32"})
        with np.load(inputs_path, allow_pickle=False) as data:
            feeds = {k: data[k] for k in data.files}
        result = compiled(feeds)
        values = {}
        for out in compiled.outputs:  # an output may carry several names (aliases of one tensor)
            for name in out.get_names():
                values[name] = np.asarray(result[out])
    except Exception as e:  # OpenVINO's own exception types: one line for the parent
        print(f"OpenVINO: {type(e).__name__}: {e}".replace("\n", " "), file=sys.stderr)
        return 3
    np.savez(out_path, **values)
    with open(meta_path, "w") as f:
        json.dump({"device": device, "version": ov.get_version().split("-")[0]}, f)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
