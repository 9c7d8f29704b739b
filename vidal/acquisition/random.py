"""Random baselines (thesis 2.5.2).

- ``random``: uniform random sampling over all unlabeled frames. It carries
  ``selection = dict(k=0, per_video=False)``, which overrides the protocol's temporal exclusion
  and per-video sampling (the ``al`` config section): the thesis's plain "Random" baseline.
- ``random_r``: Random+R, random scores under the protocol's temporal exclusion ``k`` and
  per-video sampling (``al.k``, ``al.per_video``; thesis: k=1 SYNTHIA-AL, k=3 ImageNet-VID).

Both score every candidate with ``ctx.rng.random()``; the selector does the rest.
"""

from __future__ import annotations

import numpy as np

from vidal.acquisition.base import AcquisitionContext
from vidal.registry import ACQUISITIONS


@ACQUISITIONS.register("random")
class RandomAcquisition:
    """Uniform random scores; no temporal exclusion, no per-video sampling."""

    name = "random"
    needs = frozenset()
    selection = {"k": 0, "per_video": False}

    def score(self, ctx: AcquisitionContext) -> np.ndarray:
        return ctx.rng.random(len(ctx.candidates))


@ACQUISITIONS.register("random_r")
class RandomRAcquisition:
    """Random+R: uniform random scores; the protocol's exclusion ``k`` and per-video sampling apply."""

    name = "random_r"
    needs = frozenset()

    def score(self, ctx: AcquisitionContext) -> np.ndarray:
        return ctx.rng.random(len(ctx.candidates))
