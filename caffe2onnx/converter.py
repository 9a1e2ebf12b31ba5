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
          lean: bool = True, preprocess=None, fp16: bool = False, fp16_io: bool = False) -> BuiltModel:
    """Like build_model, but the weights stay numpy arrays (see onnx_writer).

    ``detection_output=False`` stops before DetectionOutput (see rewrites.without_detection_output).
    ``lean``: the graph rewrites (caffe2onnx/rewrites) that keep the numbers; ``fold``: also
    fold per-channel Mul/Add (BatchNorm, Scale) into Conv/InnerProduct weights.
    ``preprocess``: a rewrites.preprocess.InputPreprocess baked into the graph (the input takes the raw image).
    ``fp16``: float16 weights and compute (rewrites/fp16.py), inputs/outputs float32 unless ``fp16_io``.
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
    folded = _check_batch_axis(net) if dynamic_batch else {}
    g = GraphBuilder(options)
    taken = set(net.tensors)
    for layer in net.layers:
        g.begin(layer, taken)
        registry.get(layer.type).fn(layer, g)
    batch = BATCH_DIM if dynamic_batch else None
    nodes, constants, weights, aliases = g.nodes, g.initializers, g.weights, {}
    if preprocess is not None and preprocess.is_identity:
        preprocess = None
    if lean or fold or preprocess:
        nodes, constants, weights, aliases = rewrite(net, g, opset, batch, lean=lean, fold=fold,
                                                     preprocess=preprocess)
    fixed = _batch_free(net)
    inputs = [_value_info(net, n, batch) for n in net.inputs]
    if preprocess:
        inputs, props = _raw_inputs(net, inputs, preprocess)
    outputs = [_value_info(net, n, None if n in fixed else batch, folded.get(n)) for n in net.outputs]
    graph = helper.make_graph(nodes, net.name or "caffe_net", inputs, outputs, constants)
    graph.value_info.extend(_intermediate_info(net, nodes, aliases, batch, fixed, folded))
    opsets = [helper.make_opsetid("", opset)]
    model = helper.make_model(graph, opset_imports=opsets, producer_name="caffe2onnx",
                              producer_version=__version__)
    model.ir_version = helper.find_min_ir_version_for(opsets)
    if aliases:
        helper.set_model_props(model, {ALIASES_KEY: aliases_json(aliases)})
    if preprocess:
        model.metadata_props.extend(onnx.StringStringEntryProto(key=k, value=v) for k, v in props.items())
    built = BuiltModel(model, weights, node_counts=(len(g.nodes), len(nodes)))
    if fp16 or fp16_io:  # on the complete model: the weights change type, so they cannot be spliced
        from .rewrites.fp16 import to_float16
        from .rewrites.preprocess import NODE_PREFIX as PREPROCESS_PREFIX
        kept = [n.name for n in nodes if preprocess and n.name.startswith(PREPROCESS_PREFIX)]
        built = BuiltModel(to_float16(built.to_proto(), keep_io_types=not fp16_io, fp32_nodes=kept), [],
                           built.node_counts)
    return built


def _value_info(net: Net, name: str, batch: str | None, folded: tuple[int, int] | None = None,
                types: Mapping[str, str] | None = None) -> onnx.ValueInfoProto:
    shape: list = list(net.shape(name))
    if folded is not None:  # the batch folded into an axis by a Reshape/Flatten: that axis is N*k
        axis, k = folded
        shape[axis] = batch if k == 1 else f"{batch}*{k}"
        return helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)
    producer = net.tensors[name].producer
    kind = (types[producer] if types is not None else net.layer(producer).type) if producer else None
    axis = DYNAMIC_AXES.get(kind) if kind else None
    if axis is not None:  # e.g. DetectionOutput: a data-dependent row count, batch axis 1
        shape[axis] = DETECTIONS_DIM
    elif batch is not None and shape:
        shape[0] = batch
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)


def _intermediate_info(net: Net, nodes, aliases, batch: str | None, fixed: set[str],
                       folded: Mapping[str, tuple[int, int]]) -> list:
    """value_info of every Caffe tensor the graph computes, from the converter's own shape rules.

    Only tensors a node of the final graph outputs under their Caffe name: the rewrites' removed
    tensors (``aliases``) are gone, and helper tensors of a mapping have no Caffe shape. The
    checker's strict shape inference then cross-checks these shapes against ONNX's own rules.
    """
    produced = {o for node in nodes for o in node.output}
    ends = set(net.inputs) | set(net.outputs)
    types = {layer.name: layer.type for layer in net.layers}  # net.layer() scans: quadratic in a long net
    return [_value_info(net, n, None if n in fixed else batch, folded.get(n), types) for n in net.tensors
            if n in produced and n not in ends and n not in aliases]


def _raw_inputs(net: Net, inputs: list, spec) -> tuple[list, dict[str, str]]:
    """The graph inputs with the preprocessed one taking the raw image, and the metadata recording it."""
    from .rewrites.preprocess import raw_value_info, target_input
    name = target_input(net.inputs, {n: net.shape(n) for n in net.inputs}, spec)
    i = list(net.inputs).index(name)
    dims = tuple(d.dim_param or d.dim_value for d in inputs[i].type.tensor_type.shape.dim)
    return inputs[:i] + [raw_value_info(name, dims, spec)] + inputs[i + 1:], spec.props(name)


def _batch_free(net: Net) -> set[str]:
    """Tensors without a batch axis: PriorBox tops (one set of priors per net) and what is computed
    from them alone, and DetectionOutput tops (all images' rows in one [1, 1, rows, 7])."""
    free: set[str] = set()
    for layer in net.layers:
        if layer.type in ("PriorBox", "DetectionOutput") or (layer.inputs and free.issuperset(layer.inputs)):
            free.update(layer.outputs)
    return free


# Layers that compute the same on a tensor whatever axis carries the batch (element-wise; Softmax
# along another axis): they may read a tensor whose batch a Reshape/Flatten folded into an axis.
_BATCH_AGNOSTIC = {"ReLU", "Sigmoid", "TanH", "AbsVal", "Exp", "Log", "Power", "BNLL", "Softmax", "Split",
                   "Dropout"}


def _check_batch_axis(net: Net) -> dict[str, tuple[int, int]]:
    """Refuses what cannot take a symbolic batch; returns {tensor: (axis, k)} for tensors whose axis
    ``axis`` is batch * k (a Reshape/Flatten folded the batch in, e.g. to (-1) or (N*C, H, W))."""
    batches = {net.shape(n)[0] for n in net.inputs}
    if len(batches) != 1:
        raise ShapeError(f"--dynamic-batch needs all inputs to share one batch size, got {sorted(batches)}")
    (n,) = batches
    fixed, folded = _batch_free(net), {}
    for layer in net.layers:
        where = f"--dynamic-batch: layer '{layer.name}' (type {layer.type})"
        carried = {folded[t][0] for t in layer.inputs if t in folded}
        if carried and (layer.type not in (*_BATCH_AGNOSTIC, "Reshape", "Flatten")
                        or (layer.type == "Softmax" and layer.params.axis in carried)
                        or (layer.type in ("Reshape", "Flatten") and carried != {0})):
            raise ShapeError(f"{where} reads a tensor whose batch an earlier Reshape/Flatten folded into axis "
                             f"{min(carried)}; only element-wise layers, Softmax along another axis and (for "
                             "axis 0) Reshape/Flatten can follow it with a symbolic batch")
        for t, s in zip(layer.outputs, layer.output_shapes):
            if t in fixed:
                continue
            if layer.type in ("Reshape", "Flatten") and not (s[0] == n and not carried):
                axis = 0 if layer.type == "Flatten" else layer.params.batch_axis  # a leading n stays the batch
                if axis is None or s[axis] % n:
                    raise ShapeError(f"{where}: reshape_param dims {list(s)} fix the batch axis {n} (output "
                                     f"'{t}'); write -1 (or 0 to copy it) where the batch goes to make it symbolic")
                if axis != 0 or s[0] != n:  # else a folded batch is unfolded back to axis 0
                    folded[t] = (axis, s[axis] // n)
            elif carried:  # element-wise: the batch stays where it was
                folded[t] = next(folded[i] for i in layer.inputs if i in folded)
            elif s[0] != n:
                raise ShapeError(f"{where} turns the batch axis {n} into {s[0]} (output '{t}' has shape {list(s)}); "
                                 "this net's batch size cannot be made symbolic")
    return folded


def convert_file(output: str | Path, prototxt: str | Path | None = None, caffemodel: str | Path | None = None, *,
                 opset: int = DEFAULT_OPSET, dynamic_batch: bool = False, detection_output: bool = True,
                 fold: bool = False, external_data: bool | None = None, preprocess=None, fp16: bool = False,
                 **load_options) -> Net:
    """Converts and writes ``output`` without ever holding the weights twice; returns the loaded Net.

    ``output`` must not be (or resolve to) an input; it is checked before anything is read.
    """
    from .digest import SourceDigests
    from .model_info import stamp_after_weights
    check_output_path(output, (prototxt, caffemodel))
    with SourceDigests(prototxt, caffemodel) as digests:
        net = load(prototxt, caffemodel, **load_options)
        built = build(net, opset=opset, dynamic_batch=dynamic_batch, detection_output=detection_output, fold=fold,
                      preprocess=preprocess, fp16=fp16)
        stamp_after_weights(built, net, digests, prototxt=prototxt, caffemodel=caffemodel,
                            phase=load_options.get("phase"), stages=load_options.get("stages", ()),
                            level=load_options.get("level", 0), random_weights=load_options.get("random_weights"))
        built.save_checked(output, external_data=external_data)  # checks run while the weights are copied
    return net


def convert(prototxt: str | Path | None = None, caffemodel: str | Path | None = None, *,
            opset: int = DEFAULT_OPSET, input_shapes: Mapping[str, Sequence[int]] | None = None,
            dynamic_batch: bool = False, random_weights: int | None = None, check: bool = True,
            phase: int | str | None = None, stages: Sequence[str] = (), level: int = 0,
            caffe_proto: str | Path | None = None, detection_output: bool = True,
            preprocess=None, fp16: bool = False) -> onnx.ModelProto:
    """Converts a Caffe net to a checked ONNX model (see ``caffe2onnx convert --help``)."""
    net = load(prototxt, caffemodel, phase=phase, stages=stages, level=level,
               input_shapes=input_shapes, random_weights=random_weights, caffe_proto=caffe_proto)
    built = build(net, opset=opset, dynamic_batch=dynamic_batch, detection_output=detection_output,
                  preprocess=preprocess, fp16=fp16)
    if check:
        built.check()  # on the weight-free skeleton: the weights are written as built
    return built.to_proto()


def save_model(model: onnx.ModelProto, path: str | Path) -> None:
    """Writes a ModelProto atomically: a failed write leaves no partial file behind."""
    BuiltModel(model, []).save(path, external_data=False)  # its initializers are inline: one file
