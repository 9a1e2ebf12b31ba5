"""Runs real Caffe (pycaffe) layer by layer; meant to run in its own, isolated process.

Caffe aborts the whole process on a net it rejects (a glog CHECK), so callers
start this as a subprocess: ``python -I caffe_worker.py --sys-path=P NET WEIGHTS
INPUTS.npz OUT.npz`` (``--check`` instead of the four paths only imports
caffe). It imports nothing from caffe2onnx and only the ``--sys-path`` entries
are added to sys.path, so no module from the user's or the net's directory can
be imported. NET is the prototxt caffe2onnx wrote from its own filtered net.
Every layer's tops are saved right after that layer runs, so values that a
later in-place layer overwrites are kept, under the key
``"<layer name>\\x1f<top blob>"``; the inputs under their blob names.
"""
from __future__ import annotations

import os
import sys

SEP = "\x1f"


def _apply_sys_path(argv: list[str]) -> list[str]:
    if argv and argv[0].startswith("--sys-path="):
        sys.path[:0] = [p for p in argv[0].split("=", 1)[1].split(os.pathsep) if p]
        argv = argv[1:]
    sys.path[:] = [p for p in sys.path if p not in ("", ".")]  # never the current directory
    return argv


def main(argv: list[str]) -> int:
    argv = _apply_sys_path(argv)
    os.environ.setdefault("GLOG_minloglevel", "2")
    if argv == ["--check"]:  # prints the layer types this Caffe registers, one a line
        import caffe
        print("\n".join(caffe.layer_type_list()))
        return 0
    net_path, weights, inputs_path, out_path = argv
    import numpy as np
    import caffe

    caffe.set_mode_cpu()
    net = caffe.Net(net_path, caffe.TEST, weights=weights) if weights != "-" else caffe.Net(net_path, caffe.TEST)
    with np.load(inputs_path, allow_pickle=False) as data:
        inputs = {k: data[k] for k in data.files}
    for name, value in inputs.items():
        if net.blobs[name].data.shape != value.shape:
            net.blobs[name].reshape(*value.shape)
    net.reshape()
    for name, value in inputs.items():
        net.blobs[name].data[...] = value
    out = {}
    names = list(net._layer_names)
    for i, layer_name in enumerate(names):
        net._forward(i, i)
        for top in net.top_names[layer_name]:
            out[layer_name + SEP + top] = net.blobs[top].data.copy()
    out.update({k: v for k, v in inputs.items()})
    np.savez(out_path, **out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
