"""One small mapping per Caffe layer type to ONNX ops, registered on MAPPINGS."""
from . import activation  # noqa: F401  (registers mappings)
from . import common  # noqa: F401
from . import fork, fork_roi, fork_vision  # noqa: F401
from . import normalization  # noqa: F401
from . import detection  # noqa: F401
from . import vision  # noqa: F401  (registers mappings)
from . import bvlc, recurrent  # noqa: F401
from . import extra, extra_activation, resize  # noqa: F401  (reference Caffe extra layers)
from .registry import MAPPINGS, BuildOptions, GraphBuilder, MappingRegistry

__all__ = ["MAPPINGS", "BuildOptions", "GraphBuilder", "MappingRegistry"]
