"""Layer plugins: one registration call for built-in and user layer types, and entry points.

A layer type needs up to three parts, each on its registry: a ``Spec`` (parameters and
Caffe's shape rule, ``layers.SPECS``), a mapping to ONNX nodes (``op_mappings.MAPPINGS``)
and a NumPy forward for validation without Caffe (``validators.numpy_ref.FORWARDS``).
``register_layer`` puts them there in one call; the registries' own decorators keep
working for code that registers the parts separately.

Installed packages offer layer types through the entry-point group ``caffe2onnx.layers``:
the entry point's name is the Caffe layer type, its value a callable that registers it
(``mypkg.caffe_layers:register``) or a module whose import does. Entry points are loaded
lazily: a type's plugin is imported only when a net uses that type (or when
``caffe2onnx layers`` lists everything), so a broken plugin never affects other nets.
"""
from __future__ import annotations

import contextlib
import inspect
from dataclasses import dataclass
from typing import Any, Callable, Iterator

from .errors import Caffe2OnnxError

GROUP = "caffe2onnx.layers"


class PluginError(Caffe2OnnxError):
    """A plugin failed to load or to register what it promised."""


@dataclass(frozen=True)
class Origin:
    """Where a layer type comes from: ``source`` (package or module) and ``plugin`` (entry point, if any)."""

    source: str
    plugin: str | None = None


ORIGINS: dict[str, Origin] = {}  # layer type -> origin, for types registered through register_layer
_loading: list[Origin] = []  # the entry point being loaded, so register_layer knows its package
_loaded: dict[str, str | None] = {}  # entry-point name -> None (loaded) or its one-line error


def register_layer(type: str, *, spec: Any = None, mapping: Callable | None = None,
                   reference: Callable | None = None, check: Callable | None = None,
                   source: str | None = None) -> None:
    """Registers a Caffe layer type's spec, ONNX mapping and NumPy reference (any of them).

    ``spec`` is a ``caffe2onnx.layers.Spec`` subclass (its ``type`` is set if missing),
    ``mapping(layer, g)`` emits ONNX nodes, ``reference(layer, bottoms) -> tops`` is the
    NumPy forward, ``check(layer, options)`` may return why a layer cannot be mapped.
    ``source`` names where the type comes from (default: the plugin's package, else the
    module of the first part given).
    """
    from .layers import SPECS
    from .op_mappings import MAPPINGS
    from .validators.numpy_ref import FORWARDS

    parts = [p for p in (spec, mapping, reference) if p is not None]
    if not parts:
        raise PluginError(f"register_layer({type!r}): give at least one of spec, mapping, reference")
    if spec is not None:
        if not getattr(spec, "type", None):
            spec.type = type
        if spec.type != type:
            raise PluginError(f"register_layer({type!r}): the spec is for type {spec.type!r}")
    taken = [name for name, part, reg in (("spec", spec, SPECS), ("mapping", mapping, MAPPINGS),
                                          ("reference", reference, FORWARDS))
             if part is not None and type in reg]
    if taken:
        raise PluginError(f"layer type {type!r} already has a registered {' and '.join(taken)}; "
                          f"a plugin cannot replace it")
    if spec is not None:
        SPECS.register(spec)
    if mapping is not None:
        MAPPINGS.register(type, check=check)(mapping)
    if reference is not None:
        FORWARDS.register(type)(reference)
    module = getattr(inspect.getmodule(parts[0]), "__name__", "<unknown>")
    if _loading:
        ORIGINS[type] = _loading[-1] if source is None else Origin(source, _loading[-1].plugin)
    elif source is not None or not module.startswith("caffe2onnx."):
        ORIGINS[type] = Origin(source or module)
    # else a built-in layer: its origin is the Source: line of its mapping's docstring (BVLC by default)


def _entry_points() -> list:
    from importlib.metadata import entry_points
    return list(entry_points(group=GROUP))


def _describe(ep) -> str:
    dist = getattr(ep, "dist", None)
    package = f" from package {dist.name} {dist.version}" if dist is not None else ""
    return f"plugin '{ep.name}' ({ep.value}){package}"


def _load(ep) -> None:
    dist = getattr(ep, "dist", None)
    origin = Origin(dist.name if dist is not None else ep.value.split(":")[0].split(".")[0], ep.name)
    _loaded[ep.name] = None
    _loading.append(origin)
    try:
        obj = ep.load()
        if callable(obj) and not inspect.ismodule(obj):
            obj()
    except PluginError as e:
        _loaded[ep.name] = f"{_describe(ep)}: {e}"
    except Exception as e:  # any failure inside third-party code: one line naming the plugin
        _loaded[ep.name] = f"{_describe(ep)} failed to load: {e.__class__.__name__}: {e}"
    finally:
        _loading.pop()
    if _loaded[ep.name]:
        raise PluginError(_loaded[ep.name])


def load_plugin_for(type_name: str) -> bool:
    """Loads the entry point named ``type_name`` once; True if the type is now registered."""
    from .layers import SPECS

    if type_name not in _loaded:
        eps = [ep for ep in _entry_points() if ep.name == type_name]
        _loaded[type_name] = None
        for ep in eps:
            _load(ep)
        if eps and type_name not in SPECS:
            _loaded[type_name] = f"{_describe(eps[0])} did not register a spec for layer type '{type_name}'"
    if _loaded[type_name]:
        raise PluginError(_loaded[type_name])
    return type_name in SPECS


def load_all_plugins() -> list[str]:
    """Loads every entry point of the group; returns one error line per broken plugin."""
    errors = []
    for ep in _entry_points():
        if ep.name in _loaded:
            if _loaded[ep.name]:
                errors.append(_loaded[ep.name])
            continue
        try:
            _load(ep)
        except PluginError as e:
            errors.append(str(e))
    return errors


def origin(type_name: str, mapping_doc: str | None) -> Origin:
    """A type's origin: its plugin's, else the ``Source:`` line of its mapping's docstring, else BVLC."""
    if type_name in ORIGINS:
        return ORIGINS[type_name]
    for line in (mapping_doc or "").splitlines():
        if line.strip().startswith("Source:"):
            return Origin(line.strip()[len("Source:"):].strip())
    return Origin("BVLC")


@contextlib.contextmanager
def isolated() -> Iterator[None]:
    """For tests: registrations made inside are removed on exit, and entry points re-read."""
    from .layers import SPECS
    from .op_mappings import MAPPINGS
    from .validators.numpy_ref import FORWARDS

    saved = (dict(SPECS._specs), dict(MAPPINGS._mappings), dict(FORWARDS._forwards), dict(ORIGINS), dict(_loaded))
    try:
        yield
    finally:
        for reg, attr, old in ((SPECS, "_specs", saved[0]), (MAPPINGS, "_mappings", saved[1]),
                               (FORWARDS, "_forwards", saved[2])):
            setattr(reg, attr, old)
        ORIGINS.clear()
        ORIGINS.update(saved[3])
        _loaded.clear()
        _loaded.update(saved[4])
