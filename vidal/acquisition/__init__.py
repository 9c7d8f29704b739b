"""Acquisition functions (thesis 2.3, 2.5.2), registered by name in
:data:`vidal.registry.ACQUISITIONS`; the protocol is in :mod:`.base`.

Importing this package registers: ``random``, ``random_r`` (:mod:`.random`), ``least_confidence``,
``margin``, ``entropy`` (:mod:`.uncertainty`), ``oracle_fp``, ``oracle_fn`` (:mod:`.oracle`),
``temporal_coherence`` (:mod:`.temporal_coherence`), ``label_dispersion`` (:mod:`.dispersion`).
"""

from vidal.acquisition import dispersion, oracle, random, temporal_coherence, uncertainty
from vidal.acquisition.base import NEEDS, Acquisition, AcquisitionContext

__all__ = ["NEEDS", "Acquisition", "AcquisitionContext", "dispersion", "oracle", "random", "temporal_coherence", "uncertainty"]
