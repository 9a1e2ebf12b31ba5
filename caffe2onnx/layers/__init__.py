"""Layer specs: parameter normalisation and Caffe's shape rules, one registry."""
from . import activation, common, normalization, shape, vision  # noqa: F401  (registers the specs)
from . import bvlc, recurrent, reduction  # noqa: F401
from . import fork, fork_vision  # noqa: F401
from . import detection  # noqa: F401
from . import extra, extra_activation, resize  # noqa: F401  (reference Caffe extra layers)
from .registry import SPECS, Inferred, LayerProblem, Spec, SpecRegistry

__all__ = ["SPECS", "Inferred", "LayerProblem", "Spec", "SpecRegistry"]
