"""Parameters of temporal coherence: defaults and their checks (the reasons for the defaults are
in the docstring of :mod:`vidal.acquisition.temporal_coherence`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from vidal.graphcut import SOLVERS

DEFAULTS: dict[str, Any] = {
    "window": 3,
    "link_iou": 0.5,
    "score_threshold": 0.5,
    "candidate_iou": 0.5,
    "pairwise": 1.0,
    "matching": "one_to_one",
    "solver": "auto",
    "target": "fp",
}
MATCHINGS = ("one_to_one", "all")
TARGETS = ("fp", "fn", "fp+fn")
#: parameters of the error estimate itself (``target`` only chooses the acquisition score)
ESTIMATE_KEYS = ("window", "link_iou", "score_threshold", "candidate_iou", "pairwise", "matching", "solver")


def check_params(params: Mapping[str, Any], where: str = "temporal_coherence") -> dict[str, Any]:
    """``DEFAULTS`` updated with ``params``, validated; unknown keys or bad values raise
    ``ValueError`` naming the key and listing the valid ones."""
    unknown = sorted(set(params) - set(DEFAULTS))
    if unknown:
        raise ValueError(f"{where}: unknown parameter(s) {', '.join(unknown)}; valid: {', '.join(DEFAULTS)}")
    p = {**DEFAULTS, **params}
    w = p["window"]
    if isinstance(w, bool) or not isinstance(w, (int, np.integer)) or w < 1:
        raise ValueError(f"{where}: window must be an int >= 1 (frames on each side), got {w!r}")
    p["window"] = int(w)
    for key in ("link_iou", "candidate_iou"):
        if not isinstance(p[key], (int, float)) or not 0.0 <= p[key] < 1.0:
            raise ValueError(f"{where}: {key} must be an IoU in [0, 1), got {p[key]!r}")
        p[key] = float(p[key])
    if not isinstance(p["score_threshold"], (int, float)) or not 0.0 <= p["score_threshold"] <= 1.0:
        raise ValueError(f"{where}: score_threshold must be in [0, 1], got {p['score_threshold']!r}")
    if not isinstance(p["pairwise"], (int, float)) or not (0.0 <= p["pairwise"] < np.inf):
        raise ValueError(f"{where}: pairwise must be a finite number >= 0, got {p['pairwise']!r}")
    p["score_threshold"], p["pairwise"] = float(p["score_threshold"]), float(p["pairwise"])
    for key, valid in (("matching", MATCHINGS), ("solver", SOLVERS), ("target", TARGETS)):
        if p[key] not in valid:
            raise ValueError(f"{where}: {key} must be one of {', '.join(valid)}, got {p[key]!r}")
    return p
