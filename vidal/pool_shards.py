"""Pool predictions stored per video (issue 18): ``cycle_XXX/pool_predictions/``.

A pool of 100k frames does not fit one process's prediction step nor one array in memory; its
predictions are kept as one ``npz`` shard per video, written atomically (tmp + ``os.replace``) as
the videos are predicted, so a run killed while predicting resumes with the videos whose shard is
complete::

    cycle_XXX/pool_predictions/video_VVVVV.npz   one video: format, video, frames int64 [F_v]
                                                 (train-split flat indices), time_s, and the
                                                 arrays of vidal.detection.base.predictions_to_arrays
                                                 (offsets [F_v + 1], boxes, scores, labels, probs)
    cycle_XXX/pool_predictions/done.json         written last: format, videos, frames, time_s

Everything is read with ``allow_pickle=False``. :class:`ShardedPredictions` is the list of every
frame's :class:`~vidal.detection.base.Predictions` that the acquisitions index
(``predictions[i]``), reading a video's shard when one of its frames is asked for and keeping only
the last few videos: scoring the pool in frame order holds one video at a time, so its memory does
not grow with the pool (benchmarks/bench_pool_memory.py).
"""

from __future__ import annotations

import json
import os
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path

import numpy as np

SHARD_FORMAT = "vidal-pool-shard-v1"
DONE_FORMAT = "vidal-pool-shards-v1"
DIR_NAME = "pool_predictions"
DONE = "done.json"


class ShardError(ValueError):
    """A shard that cannot be read: one line naming the file and the fix."""


def video_frames(video_of_frames: np.ndarray) -> list[np.ndarray]:
    """int64 frame indices of each video ``0..V-1`` (``video_of_frames``: int ``[N]``, the video
    of every train-split frame)."""
    v = np.asarray(video_of_frames, np.int64)
    n_videos = int(v.max()) + 1 if len(v) else 0
    order = np.argsort(v, kind="stable")
    bounds = np.searchsorted(v[order], np.arange(n_videos + 1))
    return [order[bounds[k]:bounds[k + 1]] for k in range(n_videos)]


class PoolShards:
    """The per-video shard folder of one cycle (see the module docstring)."""

    def __init__(self, folder: str | os.PathLike, video_of_frames: np.ndarray):
        self.folder = Path(folder)
        self.video_of_frames = np.asarray(video_of_frames, np.int64)
        self.frames_of = video_frames(self.video_of_frames)

    @property
    def n_videos(self) -> int:
        return len(self.frames_of)

    def path(self, v: int) -> Path:
        return self.folder / f"video_{v:05d}.npz"

    def has(self, v: int) -> bool:
        return self.path(v).is_file()

    def missing(self) -> list[int]:
        """The videos without a complete shard (all of them in a fresh folder)."""
        return [v for v in range(self.n_videos) if not self.has(v)]

    @property
    def done(self) -> bool:
        return (self.folder / DONE).is_file()

    def write(self, v: int, predictions: Sequence, time_s: float) -> None:
        """Video ``v``'s shard (its frames' predictions in frame order), atomically."""
        from vidal.detection.base import predictions_to_arrays
        from vidal.workdir import atomic_write

        frames = self.frames_of[v]
        if len(predictions) != len(frames):
            raise ValueError(f"video {v} has {len(frames)} frames, got {len(predictions)} predictions")
        self.folder.mkdir(parents=True, exist_ok=True)
        arrays = predictions_to_arrays(predictions)
        atomic_write(self.path(v), lambda f: np.savez(f, format=SHARD_FORMAT, video=np.int64(v), frames=frames,
                                                      time_s=np.float64(time_s), **arrays))

    def read(self, v: int) -> list:
        """Video ``v``'s predictions (``allow_pickle=False``); a shard that is not one, or not this
        video's, is a one-line :class:`ShardError`."""
        from vidal.detection.base import predictions_from_arrays

        path = self.path(v)
        try:
            with np.load(path, allow_pickle=False) as z:
                if "format" not in z or str(z["format"]) != SHARD_FORMAT:
                    raise ValueError(f"not {SHARD_FORMAT}")
                if int(z["video"]) != v or not np.array_equal(z["frames"], self.frames_of[v]):
                    raise ValueError(f"it holds other frames than video {v}'s")
                return predictions_from_arrays(z)
        except Exception as e:  # noqa: BLE001 - zip / format / pickled-object errors: name the file, one line
            first = (str(e).strip().splitlines() or [""])[0][:160]
            raise ShardError(f"{path}: cannot be read as a pool-prediction shard ({type(e).__name__}: {first}); "
                             f"delete it and resume to predict that video again") from None

    def finish(self, time_s: float, world_size: int = 1) -> None:
        """``done.json`` (every shard is there): the step is complete."""
        from vidal.workdir import write_json

        missing = self.missing()
        if missing:
            raise RuntimeError(f"{self.folder}: videos {missing[:5]} have no shard; cannot finish")
        write_json(self.folder / DONE, {"format": DONE_FORMAT, "videos": self.n_videos,
                                        "frames": int(len(self.video_of_frames)), "time_s": float(time_s),
                                        "world_size": int(world_size)})

    def time_s(self) -> float:
        return float(json.loads((self.folder / DONE).read_text())["time_s"])

    def predictions(self, cache_videos: int = 4) -> ShardedPredictions:
        return ShardedPredictions(self, cache_videos)


class ShardedPredictions(Sequence):
    """``predictions[i]`` for every train-split frame ``i``, read video by video from the shards,
    the last ``cache_videos`` videos kept (least recently used dropped first)."""

    def __init__(self, shards: PoolShards, cache_videos: int = 4):
        self.shards, self.cache_videos = shards, max(1, int(cache_videos))
        self._cache: OrderedDict[int, list] = OrderedDict()
        self._pos = np.empty(len(shards.video_of_frames), np.int64)  # frame -> row within its video
        for frames in shards.frames_of:
            self._pos[frames] = np.arange(len(frames))
        self.reads = 0  # shards read so far (tests, benchmarks)

    def __len__(self) -> int:
        return len(self.shards.video_of_frames)

    def _video(self, v: int) -> list:
        if v in self._cache:
            self._cache.move_to_end(v)
            return self._cache[v]
        preds = self.shards.read(v)
        self.reads += 1
        self._cache[v] = preds
        if len(self._cache) > self.cache_videos:
            self._cache.popitem(last=False)
        return preds

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[k] for k in range(*i.indices(len(self)))]
        i = int(i)
        if i < 0:
            i += len(self)
        if not 0 <= i < len(self):
            raise IndexError(f"frame {i} is not in the pool of {len(self)} frames")
        return self._video(int(self.shards.video_of_frames[i]))[int(self._pos[i])]
