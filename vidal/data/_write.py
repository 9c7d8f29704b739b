"""Shared writing step of the importers: stream videos into a ``vidal-video-v1`` file.

Each video goes through ``synth.writer.ShardWriter`` into a one-video shard in a temporary
folder next to the output, and ``synth.writer.merge_shards`` assembles the split file
atomically (an interrupted import leaves no output file behind).
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping

import numpy as np
from tqdm import tqdm

from synth.writer import ShardWriter, merge_shards

#: Per-video attributes that importers cannot know (docs/format.md allows "unknown").
UNKNOWN_VIDEO_ATTRS = {"subset": "unknown", "area": "unknown", "season": "unknown",
                       "daytime": "unknown", "weather": "unknown", "seed": -1}


@dataclass
class VideoToWrite:
    """One video for ``write_videos``.

    Attributes:
        name: group name (no ``/``).
        n_frames, height, width: T, H, W.
        attrs: per-video attributes (``UNKNOWN_VIDEO_ATTRS`` fill the missing required ones).
        frames: callable returning an iterator of ``(rgb uint8 [H,W,3], annotations)`` pairs,
            one per frame, annotations as made by ``frame_annotations``. Called once, when the
            video is written, so frames are decoded one at a time.
    """

    name: str
    n_frames: int
    height: int
    width: int
    frames: Callable[[], Iterator[tuple[np.ndarray, dict[str, np.ndarray]]]]
    attrs: dict[str, Any] = field(default_factory=dict)


def frame_annotations(boxes, labels, track_ids, *, occlusion=None, truncation=None,
                      visible_fraction=None) -> dict[str, np.ndarray]:
    """The per-box arrays of one frame for ``ShardWriter.add_frame``.

    Args:
        boxes: [N,4] x1, y1, x2, y2 pixels. labels, track_ids: [N] ints.
        occlusion, truncation: [N] in [0,1) (default 0). visible_fraction: [N] in (0,1]
            (default ``(1 - truncation) * (1 - occlusion)``).
    """
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    n = len(boxes)
    occ = np.zeros(n, np.float32) if occlusion is None else np.asarray(occlusion, np.float32)
    trunc = np.zeros(n, np.float32) if truncation is None else np.asarray(truncation, np.float32)
    vis = ((1 - trunc) * (1 - occ)).astype(np.float32) if visible_fraction is None \
        else np.asarray(visible_fraction, np.float32)
    return {"boxes": boxes, "labels": np.asarray(labels, np.int32).reshape(n),
            "track_ids": np.asarray(track_ids, np.int32).reshape(n),
            "occlusion": occ, "truncation": trunc, "visible_fraction": vis}


def write_videos(out_path: str | os.PathLike, videos: Iterable[VideoToWrite], root_attrs: Mapping[str, Any],
                 *, overwrite: bool = False, compression: str = "gzip", progress: bool = True,
                 total_frames: int | None = None, desc: str = "writing") -> Path:
    """Write ``videos`` into the ``vidal-video-v1`` file ``out_path``, atomically.

    Args:
        root_attrs: root attributes except ``format`` (see ``merge_shards``).
        total_frames: frame count for the progress bar.
    Returns:
        ``out_path`` as a Path.
    """
    out_path = Path(out_path)
    if out_path.exists() and not overwrite:
        raise FileExistsError(f"{out_path} exists; pass overwrite=True (--overwrite) to replace it")
    out_path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out_path.parent, prefix=f".{out_path.name}.shards-") as tmp:
        shards = []
        with tqdm(total=total_frames, desc=desc, unit="frame", disable=not progress) as bar:
            for k, video in enumerate(videos):
                shard = Path(tmp) / f"{k:06d}.h5"
                attrs = {**UNKNOWN_VIDEO_ATTRS, **video.attrs}
                with ShardWriter(shard, video.name, n_frames=video.n_frames, height=video.height,
                                 width=video.width, attrs=attrs, compression=compression) as writer:
                    for rgb, ann in video.frames():
                        writer.add_frame(rgb, ann)
                        bar.update(1)
                shards.append(shard)
        if not shards:
            raise ValueError(f"{out_path}: no video to write (every video was filtered out)")
        return merge_shards(out_path, shards, root_attrs, overwrite=overwrite)
