"""vidal: active learning for object detection in video."""

__version__ = "0.1.0"
