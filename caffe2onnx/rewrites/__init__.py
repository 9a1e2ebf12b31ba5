"""Graph rewrites: pure functions from a loaded ``Net`` to another ``Net``."""
from .detection import without_detection_output

__all__ = ["without_detection_output"]
