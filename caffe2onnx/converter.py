"""From a loaded ``Net`` to a checked ``onnx.ModelProto``, and atomic saving."""
from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

from . import onnx_lite as onnx
from .onnx_lite import TensorProto, helper  # not `import onnx`: see onnx_lite

from . import __version__
from .errors import ConversionError, ShapeError
from .ir import Net
from .layers.detection import DETECTIONS_DIM, DYNAMIC_AXES
from .model_check import check_model
from .onnx_writer import BuiltModel
from .op_mappings import MAPPINGS, BuildOptions, GraphBuilder, MappingRegistry
from .parser import load
from .rewrites import ALIASES_KEY, aliases_json, rewrite, without_detection_output
from .safe_io import check_output_path

__all__ = ["DEFAULT_OPSET", "MIN_OPSET", "build", "build_model", "check_model", "convert", "convert_file",
           "max_opset", "save_model"]

DEFAULT_OPSET = 17
MIN_OPSET = 11
BATCH_DIM = "N"


def max_opset() -> int:
    """The newest ai.onnx opset the installed onnx package knows."""
    return onnx.opset_version()


def build_model(net: Net, opset: int = DEFAULT_OPSET, dynamic_batch: bool = False,
                registry: MappingRegistry = MAPPINGS) -> onnx.ModelProto:
    """Maps every layer of ``net`` to ONNX nodes; raises before building if any cannot be."""
    return build(net, opset, dynamic_batch, registry).to_proto()


def build(net: Net, opset: int = DEFAULT_OPSET, dynamic_batch: bool = False,
          registry: MappingRegistry = MAPPINGS, detection_output: bool = True, *, fold: bool = False,
          lean: bool = True) -> BuiltModel:
    """Like build_model, but the weights stay numpy arrays (see onnx_writer).

    ``detection_output=False`` stops before DetectionOutput (see rewrites.without_detection_output).
    ``lean``: the graph rewrites (caffe2onnx/rewrites) that keep the numbers; ``fold``: also
    fold per-channel Mul/Add (BatchNorm, Scale) into Conv/InnerProduct weights.
    """
    if not detection_output:
        net = without_detection_output(net)
    if not MIN_OPSET <= opset <= max_opset():
        raise ConversionError(f"opset {opset} is not supported: choose {MIN_OPSET}..{max_opset()} "
                              f"(the newest the installed onnx {onnx.onnx_version()} knows)")
    options = BuildOptions(opset=opset, dynamic_batch=dynamic_batch)
    registry.preflight(net, options)
    missing = [l.name for l in net.layers if l.weight_shapes and not l.weights]
    if missing:
        raise ConversionError(f"no weights for {len(missing)} layer(s) ({', '.join(missing[:5])}"
                              f"{', ...' if len(missing) > 5 else ''}): give WEIGHTS.caffemodel or --random-weights SEED")
    if dynamic_batch:
        _check_batch_axis(net)
    g = GraphBuilder(options)
    taken = set(net.tensors)
    for layer in net.layers:
        g.begin(layer, taken)
        registry.get(layer.type).fn(layer, g)
    batch = BATCH_DIM if dynamic_batch else None
    nodes, constants, weights, aliases = g.nodes, g.initializers, g.weights, {}
    if lean or fold:
        nodes, constants, weights, aliases = rewrite(net, g, opset, batch, lean=lean, fold=fold)
    fixed = _batch_free(net)
    inputs = [_value_info(net, n, batch) for n in net.inputs]
    outputs = [_value_info(net, n, None if n in fixed else batch) for n in net.outputs]
    graph = helper.make_graph(nodes, net.name or "caffe_net", inputs, outputs, constants)
    graph.value_info.extend(_intermediate_info(net, nodes, aliases, batch, fixed))
    opsets = [helper.make_opsetid("", opset)]
    model = helper.make_model(graph, opset_imports=opsets, producer_name="caffe2onnx",
                              producer_version=__version__)
    model.ir_version = helper.find_min_ir_version_for(opsets)
    if aliases:
        helper.set_model_props(model, {ALIASES_KEY: aliases_json(aliases)})
    return BuiltModel(model, weights, node_counts=(len(g.nodes), len(nodes)))


def _value_info(net: Net, name: str, batch: str | None, types: Mapping[str, str] | None = None) -> onnx.ValueInfoProto:
    shape: list = list(net.shape(name))
    producer = net.tensors[name].producer
    kind = (types[producer] if types is not None else net.layer(producer).type) if producer else None
    axis = DYNAMIC_AXES.get(kind) if kind else None
    if axis is not None:  # e.g. DetectionOutput: a data-dependent row count, batch axis 1
        shape[axis] = DETECTIONS_DIM
    elif batch is not None and shape:
        shape[0] = batch
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)


def _intermediate_info(net: Net, nodes, aliases, batch: str | None, fixed: set[str]) -> list:
    """value_info of every Caffe tensor the graph computes, from the converter's own shape rules.

    Only tensors a node of the final graph outputs under their Caffe name: the rewrites' removed
    tensors (``aliases``) are gone, and helper tensors of a mapping have no Caffe shape. The
    checker's strict shape inference then cross-checks these shapes against ONNX's own rules.
    """
    produced = {o for node in nodes for o in node.output}
    ends = set(net.inputs) | set(net.outputs)
    types = {layer.name: layer.type for layer in net.layers}  # net.layer() scans: quadratic in a long net
    return [_value_info(net, n, None if n in fixed else batch, types) for n in net.tensors
            if n in produced and n not in ends and n not in aliases]


def _batch_free(net: Net) -> set[str]:
    """Tensors without a batch axis: PriorBox tops (one set of priors per net) and what is computed
    from them alone, and DetectionOutput tops (all images' rows in one [1, 1, rows, 7])."""
    free: set[str] = set()
    for layer in net.layers:
        if layer.type in ("PriorBox", "DetectionOutput") or (layer.inputs and free.issuperset(layer.inputs)):
            free.update(layer.outputs)
    return free


def _check_batch_axis(net: Net) -> None:
    batches = {net.shape(n)[0] for n in net.inputs}
    if len(batches) != 1:
        raise ShapeError(f"--dynamic-batch needs all inputs to share one batch size, got {sorted(batches)}")
    (n,) = batches
    fixed = _batch_free(net)
    for layer in net.layers:
        for t, s in zip(layer.outputs, layer.output_shapes):
            if s[0] != n and t not in fixed:
                raise ShapeError(f"--dynamic-batch: layer '{layer.name}' (type {layer.type}) turns the batch "
                                 f"axis {n} into {s[0]} (output '{t}' has shape {list(s)}); this net's batch "
                                 "size cannot be made symbolic")


def convert_file(output: str | Path, prototxt: str | Path | None = None, caffemodel: str | Path | None = None, *,
                 opset: int = DEFAULT_OPSET, dynamic_batch: bool = False, detection_output: bool = True,
                 fold: bool = False, external_data: bool | None = None, **load_options) -> Net:
    """Converts and writes ``output`` without ever holding the weights twice; returns the loaded Net.

    ``output`` must not be (or resolve to) an input; it is checked before anything is read.
    """
    from .model_info import describe, stamp
    check_output_path(output, (prototxt, caffemodel))
    net = load(prototxt, caffemodel, **load_options)
    built = build(net, opset=opset, dynamic_batch=dynamic_batch, detection_output=detection_output, fold=fold)
    stamp(built.model, describe(net, prototxt=prototxt, caffemodel=caffemodel, phase=load_options.get("phase"),
                                stages=load_options.get("stages", ()), level=load_options.get("level", 0),
                                random_weights=load_options.get("random_weights")))
    built.save_checked(output, external_data=external_data)  # checks run while the weights are copied
    return net


def convert(prototxt: str | Path | None = None, caffemodel: str | Path | None = None, *,
            opset: int = DEFAULT_OPSET, input_shapes: Mapping[str, Sequence[int]] | None = None,
            dynamic_batch: bool = False, random_weights: int | None = None, check: bool = True,
            phase: int | str | None = None, stages: Sequence[str] = (), level: int = 0,
            caffe_proto: str | Path | None = None, detection_output: bool = True) -> onnx.ModelProto:
    """Converts a Caffe net to a checked ONNX model (see ``caffe2onnx convert --help``)."""
    net = load(prototxt, caffemodel, phase=phase, stages=stages, level=level,
               input_shapes=input_shapes, random_weights=random_weights, caffe_proto=caffe_proto)
    built = build(net, opset=opset, dynamic_batch=dynamic_batch, detection_output=detection_output)
    if check:
        built.check()  # on the weight-free skeleton: the weights are written as built
    return built.to_proto()


def save_model(model: onnx.ModelProto, path: str | Path) -> None:
    """Writes a ModelProto atomically: a failed write leaves no partial file behind."""
    BuiltModel(model, []).save(path, external_data=False)  # its initializers are inline: one file
