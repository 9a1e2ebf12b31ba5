"""Specs of the layers that only move data: Slice, Split, Flatten, Reshape, Crop, Permute."""
from __future__ import annotations

from dataclasses import dataclass

from .common import _legacy_axis
from .registry import SPECS, Inferred, LayerProblem, Spec, canonical_axis, count


@dataclass(frozen=True)
class SliceParams:
    axis: int
    points: tuple[int, ...]  # slice points; resolved to explicit points by infer()


@SPECS.register
class Slice(Spec):
    """Splits the bottom along axis at slice_point (or into equal parts)."""

    type = "Slice"
    param = "slice_param"
    fields = frozenset({"axis", "slice_dim", "slice_point"})
    tops = (1, None)

    @staticmethod
    def parse(p, layer):
        points = tuple(p.slice_point)
        if points and len(points) != len(layer.top) - 1:
            raise LayerProblem("slice_point", f"{len(points)} points for {len(layer.top)} tops")
        if any(b <= a for a, b in zip(points, points[1:])):
            raise LayerProblem("slice_point", f"points {list(points)} must increase")
        return SliceParams(_legacy_axis(p, "slice_dim"), points + (-len(layer.top),) * (not points))

    @staticmethod
    def infer(params, shapes):
        shape = shapes[0]
        axis = canonical_axis(params.axis, len(shape))
        dim = shape[axis]
        points = params.points
        if len(points) == 1 and points[0] < 0:  # equal parts
            n = -points[0]
            if dim % n:
                raise LayerProblem("axis", f"dimension {dim} does not split into {n} equal parts")
            points = tuple(dim // n * i for i in range(1, n))
        if points and points[-1] >= dim:
            raise LayerProblem("slice_point", f"point {points[-1]} beyond dimension {dim}")
        edges = (0, *points, dim)
        outs = [(*shape[:axis], b - a, *shape[axis + 1:]) for a, b in zip(edges, edges[1:])]
        return Inferred(outs, [], SliceParams(axis, points))


@dataclass(frozen=True)
class SplitParams:
    copies: int


@SPECS.register
class Split(Spec):
    """Copies its bottom to every top."""

    type = "Split"
    tops = (1, None)

    @staticmethod
    def parse(p, layer):
        return SplitParams(len(layer.top))

    @staticmethod
    def infer(params, shapes):
        return Inferred([shapes[0]] * params.copies, [])


@dataclass(frozen=True)
class FlattenParams:
    axis: int
    end_axis: int


@SPECS.register
class Flatten(Spec):
    """Collapses axes axis..end_axis into one."""

    type = "Flatten"
    param = "flatten_param"
    fields = frozenset({"axis", "end_axis"})

    @staticmethod
    def parse(p, layer):
        return FlattenParams(p.axis, p.end_axis)

    @staticmethod
    def infer(params, shapes):
        shape = shapes[0]
        a = canonical_axis(params.axis, len(shape))
        e = canonical_axis(params.end_axis, len(shape), "end_axis")
        if e < a:
            raise LayerProblem("end_axis", f"end_axis {e} before axis {a}")
        return Inferred([(*shape[:a], count(shape[a:e + 1]), *shape[e + 1:])], [], FlattenParams(a, e))


@dataclass(frozen=True)
class ReshapeParams:
    dims: tuple[int, ...]  # Caffe's spec (0 copies, -1 infers); resolved to the output shape by infer()
    axis: int
    num_axes: int
    # the output axis whose size scales with the input's axis 0 (the batch) when Caffe reshapes at run
    # time: 0 when copied or untouched, the -1 axis when the batch is folded into it, None when explicit
    # dims fix it (set by infer; --dynamic-batch uses it)
    batch_axis: int | None = 0


@SPECS.register
class Reshape(Spec):
    """Caffe's Reshape: dims replace axes [axis, axis+num_axes); 0 copies a dim, one -1 is inferred."""

    type = "Reshape"
    param = "reshape_param"
    fields = frozenset({"shape", "axis", "num_axes"})

    @staticmethod
    def parse(p, layer):
        dims = tuple(int(d) for d in p.shape.dim)
        if sum(d == -1 for d in dims) > 1:
            raise LayerProblem("shape", "at most one -1")
        if any(d < -1 for d in dims):
            raise LayerProblem("shape", f"invalid dims {list(dims)}")
        if p.num_axes < -1:
            raise LayerProblem("num_axes", "must be >= -1")
        return ReshapeParams(dims, p.axis, p.num_axes)

    @staticmethod
    def infer(params, shapes):
        shape = shapes[0]
        n = len(shape)
        start = params.axis if params.axis >= 0 else n + params.axis + 1
        if not 0 <= start <= n:
            raise LayerProblem("axis", f"{params.axis} out of range for {n} axes")
        end = n if params.num_axes == -1 else start + params.num_axes
        if end > n:
            raise LayerProblem("num_axes", f"{params.num_axes} axes from {start} exceed {n}")
        new = []
        for i, d in enumerate(params.dims):
            if d == 0:
                if start + i >= n:
                    raise LayerProblem("shape", f"dim {i} copies axis {start + i}, which does not exist")
                d = shape[start + i]
            new.append(d)
        out = [*shape[:start], *new, *shape[end:]]
        if -1 in out:
            known = count(d for d in out if d != -1)
            if known == 0 or count(shape) % known:
                raise LayerProblem("shape", f"cannot infer -1 reshaping {list(shape)} to {list(out)}")
            out[out.index(-1)] = count(shape) // known
        if count(out) != count(shape):
            raise LayerProblem("shape", f"{list(shape)} ({count(shape)} elements) cannot become {out}")
        return Inferred([tuple(out)], [], ReshapeParams(tuple(out), 0, -1, _batch_axis(params, start, end)))


def _batch_axis(params: ReshapeParams, start: int, end: int) -> int | None:
    """Where Caffe's reshape puts the input's axis 0 (see ReshapeParams.batch_axis)."""
    if start > 0 or (params.dims and params.dims[0] == 0):
        return 0
    if end == 0:  # dims inserted before axis 0: it moves, and a -1 would be inferred from it too
        return len(params.dims) if -1 not in params.dims else None
    return params.dims.index(-1) if -1 in params.dims else None


@dataclass(frozen=True)
class CropParams:
    axis: int
    offsets: tuple[int, ...]  # resolved to one per cropped axis by infer()


@SPECS.register
class Crop(Spec):
    """Crops bottom 0 to bottom 1's shape from axis on, at the given offsets."""

    type = "Crop"
    param = "crop_param"
    fields = frozenset({"axis", "offset"})
    bottoms = (2, 2)

    @staticmethod
    def parse(p, layer):
        return CropParams(p.axis, tuple(p.offset))

    @staticmethod
    def infer(params, shapes):
        big, ref = shapes
        if len(big) != len(ref):
            raise LayerProblem("bottom", "both bottoms need the same number of axes")
        axis = canonical_axis(params.axis, len(big))
        n = len(big) - axis
        offs = params.offsets
        if len(offs) not in (0, 1, n):
            raise LayerProblem("offset", f"{len(offs)} offsets for {n} cropped axes")
        offs = (offs or (0,)) * n if len(offs) <= 1 else offs
        for i, o in enumerate(offs):
            if o + ref[axis + i] > big[axis + i]:
                raise LayerProblem("offset", f"crop of axis {axis + i} runs past the bottom")
        return Inferred([(*big[:axis], *ref[axis:])], [], CropParams(axis, offs))


@dataclass(frozen=True)
class PermuteParams:
    order: tuple[int, ...]


@SPECS.register
class Permute(Spec):
    """Transposes axes to `order` (SSD fork); unnamed axes keep their relative order."""

    type = "Permute"
    param = "permute_param"
    fields = frozenset({"order"})

    @staticmethod
    def parse(p, layer):
        order = tuple(p.order)
        if len(set(order)) != len(order):
            raise LayerProblem("order", f"repeated axes in {list(order)}")
        return PermuteParams(order)

    @staticmethod
    def infer(params, shapes):
        shape = shapes[0]
        if any(not 0 <= a < len(shape) for a in params.order):
            raise LayerProblem("order", f"{list(params.order)} out of range for {len(shape)} axes")
        order = params.order + tuple(a for a in range(len(shape)) if a not in params.order)
        return Inferred([tuple(shape[a] for a in order)], [], PermuteParams(order))
