"""Trackers that propagate detections between frames (thesis 2.3.2); see :mod:`.base`.

Importing this package registers the trackers in :data:`vidal.registry.TRACKERS`.
"""

from vidal.tracking.base import Tracker
from vidal.tracking.flow import FlowTracker
from vidal.tracking.identity import IdentityTracker
from vidal.tracking.siamfc import SiamFCTracker

__all__ = ["FlowTracker", "IdentityTracker", "SiamFCTracker", "Tracker"]
