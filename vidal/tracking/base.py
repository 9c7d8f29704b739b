"""Tracker protocol (design.md 3, 4, 5.7): propagate a frame's boxes to frame ``i + delta``.

A tracker is built for one dataset (it may hold a flow cache or read frames from it) and answers
one question: where are these boxes of frame ``frame`` of video ``video`` in frame
``frame + delta``? The temporal-coherence graph (thesis 2.3.2) asks it for every
``delta in {±1..±n}``.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class Tracker(Protocol):
    """Box propagation between frames of one video.

    ``propagate(video, frame, boxes, delta)``:

    - ``video``: video index of the dataset the tracker was built for;
    - ``frame``: frame index within that video, ``0 <= frame < n_frames``;
    - ``boxes``: float32 ``[N, 4]`` ``x1, y1, x2, y2`` pixels in ``frame``;
    - ``delta``: non-zero int offset; the target ``frame + delta`` must be inside the video
      (callers check; trackers raise ``ValueError`` otherwise).

    Returns float32 ``[N, 4]``: the boxes in frame ``frame + delta``, clipped to the image; a row
    of NaN where the tracker lost the object (the graph then adds no link for it).

    Stateful trackers (SiamFC) re-track every call; ``reset()`` drops any per-cycle cache.
    """

    name: str

    def propagate(self, video: int, frame: int, boxes: np.ndarray, delta: int) -> np.ndarray: ...


def check_target(n_frames: int, video: int, frame: int, delta: int) -> None:
    """Raise ``ValueError`` unless ``frame`` and ``frame + delta`` are frames of the video."""
    if delta == 0:
        raise ValueError("propagate: delta must be non-zero")
    if not (0 <= frame < n_frames and 0 <= frame + delta < n_frames):
        raise ValueError(f"propagate: video {video} has frames 0..{n_frames - 1}; cannot go from frame "
                         f"{frame} to {frame + delta}")
