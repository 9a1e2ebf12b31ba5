"""Runs real Caffe (pycaffe) layer by layer; meant to run in its own process.

Caffe aborts the whole process on a net it rejects (a glog CHECK), so callers
start this as a subprocess: ``python -m caffe2onnx.validators.caffe_worker
NET WEIGHTS INPUTS.npz OUT.npz``. Every layer's tops are saved right after that
layer runs, so values that a later in-place layer overwrites are kept, under
the key ``"<layer name>\\x1f<top blob>"``; the inputs under their blob names.
"""
from __future__ import annotations

import os
import sys

SEP = "\x1f"


def main(argv: list[str]) -> int:
    net_path, weights, inputs_path, out_path = argv
    os.environ.setdefault("GLOG_minloglevel", "2")
    import numpy as np
    import caffe

    caffe.set_mode_cpu()
    net = caffe.Net(net_path, caffe.TEST, weights=weights) if weights != "-" else caffe.Net(net_path, caffe.TEST)
    inputs = dict(np.load(inputs_path, allow_pickle=False))
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
