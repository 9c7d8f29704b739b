"""Detectors: the framework-neutral interface (base) and its backends.

Importing this package registers the backends in :data:`vidal.registry.DETECTORS`.
"""

from vidal.detection.base import CHECKPOINT_FORMAT, Detector, Predictions, load_detector
from vidal.detection.mmdet_backend import MMDetConfig, MMDetDetector, MMDetUnavailable
from vidal.detection.torchvision_frcnn import (
    BACKBONES,
    PROFILES,
    FasterRCNNConfig,
    FasterRCNNDetector,
    build_faster_rcnn,
    profile,
)

__all__ = ["BACKBONES", "CHECKPOINT_FORMAT", "PROFILES", "Detector", "FasterRCNNConfig", "FasterRCNNDetector",
           "MMDetConfig", "MMDetDetector", "MMDetUnavailable", "Predictions", "build_faster_rcnn", "load_detector", "profile"]
