"""Runs an ONNX model in onnxruntime in its own, isolated, killable process.

``python -I ort_worker.py --sys-path=P MODEL.onnx INPUTS.npz OUT.npz META.json
PROVIDERS_JSON OPTIONS_JSON [DATA_DIR]``: runs every graph output, saves them to OUT.npz
and the provider that ran to META.json. DATA_DIR is where the files of a model with
ONNX external data lie (the model itself is written elsewhere, in a temporary folder). It imports nothing from caffe2onnx, so
the parent can stop it at its time limit (``validate --timeout``).
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
    model_path, inputs_path, out_path, meta_path, providers, options, *data_dir = argv
    import numpy as np
    os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")  # as model_check.quiet_onnxruntime: no usage records
    import onnxruntime as ort

    ort.set_default_logger_severity(3)  # errors reach the parent as our own one-line message
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    source = model_path
    if data_dir:
        if tuple(int(v) for v in ort.__version__.split(".")[:2]) >= (1, 21):
            # loaded from bytes, onnxruntime reads external data from the folder named here
            opts.add_session_config_entry("session.model_external_initializers_file_folder_path", data_dir[0])
            with open(model_path, "rb") as f:
                source = f.read()
        else:  # older: it reads them beside the model, so link them there
            _link_external_data(model_path, data_dir[0])
    try:
        sess = ort.InferenceSession(source, opts, providers=json.loads(providers),
                                    provider_options=json.loads(options))
        with np.load(inputs_path, allow_pickle=False) as data:
            feeds = {k: data[k] for k in data.files}
        names = [o.name for o in sess.get_outputs()]
        values = sess.run(names, feeds)
    except Exception as e:  # onnxruntime's own exception types: one line for the parent
        print(f"onnxruntime: {type(e).__name__}: {e}".replace("\n", " "), file=sys.stderr)
        return 3
    np.savez(out_path, **dict(zip(names, values)))
    with open(meta_path, "w") as f:
        json.dump({"provider": sess.get_providers()[0]}, f)
    return 0


def _link_external_data(model_path: str, data_dir: str) -> None:
    import onnx
    model = onnx.load(model_path, load_external_data=False)
    folder = os.path.dirname(model_path)
    for t in model.graph.initializer:
        for e in t.external_data:
            if e.key != "location":
                continue
            if os.path.isabs(e.value) or ".." in e.value.replace("\\", "/").split("/"):
                raise ValueError(f"external data location {e.value!r} leaves the model's folder")
            link = os.path.join(folder, e.value)
            if not os.path.lexists(link):
                os.makedirs(os.path.dirname(link), exist_ok=True)
                os.symlink(os.path.realpath(os.path.join(data_dir, e.value)), link)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
