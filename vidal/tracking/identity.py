"""Identity tracker: a box stays where it is (baseline and test double, design.md 5.7)."""

from __future__ import annotations

import numpy as np

from vidal.boxes import as_boxes
from vidal.registry import TRACKERS
from vidal.tracking.base import check_target


@TRACKERS.register("identity")
class IdentityTracker:
    """``propagate`` returns the boxes unchanged (after checking the target frame exists).

    Args:
        n_frames: frame count of each video, ``n_frames[video]`` (e.g.
            ``[v.n_frames for v in dataset.videos]``).
    """

    name = "identity"

    def __init__(self, n_frames):
        self.n_frames = [int(n) for n in n_frames]

    @classmethod
    def for_dataset(cls, dataset) -> "IdentityTracker":
        """The tracker of ``dataset``; it has no options (a ``tracker`` config section with any key
        but ``name`` is an error naming the key)."""
        return cls([v.n_frames for v in dataset.videos])

    def propagate(self, video: int, frame: int, boxes: np.ndarray, delta: int) -> np.ndarray:
        check_target(self.n_frames[video], video, frame, delta)
        return as_boxes(boxes).copy()
