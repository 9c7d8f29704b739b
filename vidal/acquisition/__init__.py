"""Acquisition functions (thesis 2.3, 2.5.2), registered by name in
:data:`vidal.registry.ACQUISITIONS`; the protocol is in :mod:`.base`."""

from vidal.acquisition.base import NEEDS, Acquisition, AcquisitionContext

__all__ = ["NEEDS", "Acquisition", "AcquisitionContext"]
