"""Test and benchmark support: a weak detector simulated from the ground truth.

Not part of vidal: it reads the labels. Used by tests/test_estimate_errors.py and by
benchmarks/bench_tc.py (which puts this folder on ``sys.path``), to check error estimators such as
temporal coherence (:mod:`vidal.acquisition.temporal_coherence`) and to time them on a graph of
realistic size.
"""

from __future__ import annotations

import numpy as np


def simulate_detections(dataset, *, seed: int = 0, drop: float = 0.25, spurious: float = 0.2, dup: float = 0.05,
                        jitter: float = 0.03, frames=None) -> list:
    """A weak detector made from ground truth, to check error estimators and time them.

    For each frame (``frames``: flat indices, default all): every GT box is dropped with
    probability ``drop`` (a real FN), jittered by ``jitter`` x its size, duplicated (shifted by a
    quarter of its width; a real FP) with probability ``dup``, and Poisson(``spurious``) random
    boxes 6-30 px of random classes are added (real FPs). Scores are uniform in [0.55, 1].
    Returns one :class:`vidal.detection.base.Predictions` per frame.
    """
    from vidal.detection.base import Predictions

    rng = np.random.default_rng(seed)
    C = dataset.num_classes
    out = []
    for i in (range(len(dataset)) if frames is None else frames):
        g = dataset.ground_truth(int(i))
        W, H = g["width"], g["height"]
        keep = rng.random(len(g["boxes"])) > drop
        b = g["boxes"][keep].astype(np.float64)
        lab = g["labels"][keep]
        wh = np.concatenate([b[:, 2:] - b[:, :2]] * 2, axis=1)
        b = b + rng.normal(0, jitter, b.shape) * wh
        d = rng.random(len(b)) < dup
        b = np.concatenate([b, b[d] + wh[d] * [0.25, 0, 0.25, 0]])
        lab = np.concatenate([lab, lab[d]])
        n = rng.poisson(spurious)
        xy = rng.uniform([0, 0], [max(W - 10, 1), max(H - 10, 1)], (n, 2))
        size = rng.uniform(6, 30, (n, 2))
        b = np.concatenate([b, np.concatenate([xy, np.minimum(xy + size, [W, H])], axis=1)])
        lab = np.concatenate([lab, rng.integers(1, C + 1, n)]).astype(np.int64)
        sc = rng.uniform(0.55, 1.0, len(b))
        probs = np.zeros((len(b), C + 1))
        probs[np.arange(len(b)), lab] = sc
        probs[:, 0] = 1 - sc
        out.append(Predictions(b, sc, lab, probs))
    return out
