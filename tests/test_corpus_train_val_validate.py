"""Models as they come, validated: every train_val/train_test/test net of the shared corpus, in
TEST phase with seeded weights at batch 1, matches the reference on every blob (real Caffe where
installed, running the net caffe2onnx wrote from its own filtered net; else the NumPy reference)."""
import pytest

import caffe2onnx
from caffe2onnx.converter import build
from caffe2onnx.validators.check import validate
from harness import corpus
from test_loader_data_corpus import NEEDS_SHAPE, ONE_PHASE, STAGES, _nets

TEST_NETS = [n for n in _nets() if ONE_PHASE.get(n.rsplit("/", 1)[-1], "TEST") == "TEST"]


@pytest.mark.parametrize("rel", TEST_NETS)
def test_train_val_net_validates_at_batch_1(rel):
    path = corpus(rel)
    stages = next((s.get("TEST", ()) for k, s in STAGES.items() if k in rel), ())
    given = next((s for k, s in NEEDS_SHAPE.items() if k in rel), None)
    declared = caffe2onnx.load(path, stages=stages, input_shapes=given)
    batch1 = {n: (1, *declared.shape(n)[1:]) for n in declared.inputs}  # a train_val's batch is 50-256
    net = caffe2onnx.load(path, stages=stages, input_shapes=batch1, random_weights=0)
    result = validate(path, None, build(net).to_proto(), net=net)
    assert result.passed, [b.tensor for b in result.blobs if not b.passed][:5]
    assert len(result.blobs) >= len(net.layers)
