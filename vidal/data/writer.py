"""Writing ``vidal-video-v1`` files (docs/format.md): the public writing API of the format.

Each video is written into a *shard* file of its own (one video per file, frames streamed one at
a time so memory stays at one frame; :class:`ShardWriter`); :func:`merge_shards` then merges the
shards of a split into ``<split>.h5`` with ``h5py``'s object copy (compressed chunks are copied,
not recompressed) into a temporary file that is renamed into place, so a reader never sees a
partial split file and an interrupted run leaves no ``train.h5`` behind.

Two users: synth's generator renders every sequence into a shard in a worker process and merges
them (it also writes the optional ``masks`` / ``depth`` / ``flow`` arrays); the importers
(ImageNet-VID, COCO-VID) describe their videos as :class:`VideoToWrite` and call
:func:`write_videos`, which does both steps in a temporary folder next to the output.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping

import h5py
import numpy as np
from tqdm import tqdm

from vidal.data.h5format import BOX_ARRAYS, FORMAT_NAME, VIDEO_NAME_RULE, VIDEOS_GROUP, video_name_problem

#: dtype of every per-box array, in the order of ``BOX_ARRAYS``.
_BOX_DTYPES = {
    "boxes": np.float32,
    "labels": np.int32,
    "track_ids": np.int32,
    "frame_index": np.int32,
    "visible_fraction": np.float32,
    "truncation": np.float32,
    "occlusion": np.float32,
}


class ShardWriter:
    """Stream one video into its own HDF5 shard file.

    Args:
        path: shard file to create (overwritten).
        name: video name (group ``videos/<name>``).
        n_frames, height, width: T, H, W of the video.
        attrs: per-video attributes (subset, area, ...); ``n_frames/height/width`` are added.
        masks, depth, flow: also store the optional dense arrays of docs/format.md.
        compression: HDF5 filter of the dense arrays, ``"gzip"`` (level 1, the default: as fast as LZF here and smaller) or ``"lzf"``.
    """

    def __init__(self, path: str | os.PathLike, name: str, *, n_frames: int, height: int, width: int,
                 attrs: Mapping[str, object], masks: bool = False, depth: bool = False,
                 flow: bool = False, compression: str = "gzip"):
        if compression not in ("lzf", "gzip"):
            raise ValueError(f"compression must be 'lzf' or 'gzip', got {compression!r}")
        problem = video_name_problem(name)
        if problem:
            raise ValueError(f"{path}: video name {problem}; expected {VIDEO_NAME_RULE}")
        self.path = Path(path)
        self.name = name
        self.n_frames, self.height, self.width = int(n_frames), int(height), int(width)
        self._file = h5py.File(self.path, "w")
        self._group = self._file.create_group(f"{VIDEOS_GROUP}/{name}")
        opts = {"compression": compression}
        if compression == "gzip":
            opts["compression_opts"] = 1
        T, H, W = self.n_frames, self.height, self.width
        self._dense = {"frames": self._group.create_dataset(
            "frames", shape=(T, H, W, 3), dtype=np.uint8, chunks=(1, H, W, 3), **opts)}
        # byte shuffling makes multi-byte arrays (ids, depth, flow) compress smaller and faster
        opts_multibyte = dict(opts, shuffle=True)
        if masks:
            self._dense["masks"] = self._group.create_dataset(
                "masks", shape=(T, H, W), dtype=np.uint16, chunks=(1, H, W), **opts_multibyte)
        if depth:
            self._dense["depth"] = self._group.create_dataset(
                "depth", shape=(T, H, W), dtype=np.float32, chunks=(1, H, W), **opts_multibyte)
        if flow:
            # A one-frame video has an empty [0,H,W,2] flow; h5py refuses a chunk larger than a
            # fixed-size dataset, so an empty one is made resizable along T.
            n_flow = max(T - 1, 0)
            self._dense["flow"] = self._group.create_dataset(
                "flow", shape=(n_flow, H, W, 2), maxshape=(None if n_flow == 0 else n_flow, H, W, 2),
                dtype=np.float32, chunks=(1, H, W, 2), **opts_multibyte)
        self._boxes: dict[str, list[np.ndarray]] = {k: [] for k in BOX_ARRAYS}
        self._t = 0
        for key, value in attrs.items():
            self._group.attrs[key] = value
        self._group.attrs["n_frames"] = T
        self._group.attrs["height"] = H
        self._group.attrs["width"] = W

    def add_frame(self, rgb: np.ndarray, annotations: Mapping[str, np.ndarray], *,
                  mask: np.ndarray | None = None, depth: np.ndarray | None = None,
                  flow: np.ndarray | None = None) -> None:
        """Append frame ``t`` (the next one).

        Args:
            rgb: uint8 [H,W,3].
            annotations: per-box arrays of this frame, keys ``boxes [N,4]``, ``labels``,
                ``track_ids``, ``visible_fraction``, ``truncation``, ``occlusion`` (all [N]).
            mask, depth: [H,W] when enabled. flow: [H,W,2], the flow from the *previous*
                frame to this one (ignored for frame 0).
        """
        t = self._t
        if t >= self.n_frames:
            raise ValueError(f"{self.name}: more than n_frames={self.n_frames} frames written")
        self._dense["frames"][t] = rgb
        if "masks" in self._dense:
            self._dense["masks"][t] = mask
        if "depth" in self._dense:
            self._dense["depth"][t] = depth
        if "flow" in self._dense and t > 0:
            self._dense["flow"][t - 1] = flow
        n = len(annotations["boxes"])
        for key in BOX_ARRAYS:
            if key == "frame_index":
                self._boxes[key].append(np.full(n, t, np.int32))
            else:
                self._boxes[key].append(np.asarray(annotations[key], _BOX_DTYPES[key]))
        self._t += 1

    def close(self) -> None:
        """Write the per-box arrays and close the shard."""
        if self._file is None:
            return
        if self._t != self.n_frames:
            raise ValueError(f"{self.name}: {self._t} frames written, {self.n_frames} declared")
        for key in BOX_ARRAYS:
            parts = self._boxes[key]
            shape = (0, 4) if key == "boxes" else (0,)
            arr = np.concatenate(parts) if parts else np.zeros(shape, _BOX_DTYPES[key])
            if key == "boxes":
                arr = arr.reshape(-1, 4)
            self._group.create_dataset(key, data=arr.astype(_BOX_DTYPES[key], copy=False))
        self._file.close()
        self._file = None

    def abort(self) -> None:
        """Close and delete the shard (after an error)."""
        if self._file is not None:
            self._file.close()
            self._file = None
        self.path.unlink(missing_ok=True)

    def __enter__(self) -> "ShardWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def temporary_path(out_path: Path) -> Path:
    """Sibling temporary name used while ``out_path`` is being written."""
    return out_path.with_name(f".{out_path.name}.tmp-{os.getpid()}")


#: Hidden temporaries of vidal's writers and synth's generator: ``.NAME.tmp-PID``,
#: ``.NAME.shards-PID-XXXX``, ``.shards-PID``, ``.NAME.frames-tmp-PID`` (``-old-``), ``.NAME.pending-PID``.
_TEMPORARY = re.compile(r"^\.(?:.+\.)?(?:tmp|shards|frames-tmp|frames-old|pending)-(\d+)(?:-.*)?$")


def _process_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True


def remove_stale_temporaries(folder: str | os.PathLike, *, include_own: bool = False) -> list[Path]:
    """Delete the writers' temporaries in ``folder`` whose process is gone (a ``kill -9`` during
    writing leaves them; a rerun calls this first). Temporaries of live processes are kept, this
    process's too unless ``include_own`` (its own clean-up after an error). Returns the removed paths."""
    import shutil

    folder = Path(folder)
    removed = []
    if not folder.is_dir():
        return removed
    for entry in folder.iterdir():
        m = _TEMPORARY.match(entry.name)
        pid = int(m.group(1)) if m else -1
        if not m or (_process_alive(pid) and not (include_own and pid == os.getpid())):
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)
        removed.append(entry)
    return removed


def merge_shards(out_path: str | os.PathLike, shard_paths: Iterable[str | os.PathLike],
                 root_attrs: Mapping[str, object], *, overwrite: bool = False) -> Path:
    """Write the split file ``out_path`` from one-video shard files, atomically.

    The videos are copied (compressed chunks as they are) into a temporary file next to
    ``out_path``, the root attributes of docs/format.md are set, and the temporary file is
    renamed over ``out_path``. On any error the temporary file is removed.

    Args:
        root_attrs: must hold ``classes, fps, split, generator_config, seed, command,
            created_by``; ``format`` is set here. Dicts are stored as JSON strings.
    """
    out_path = Path(out_path)
    if out_path.exists() and not overwrite:
        raise FileExistsError(f"{out_path} exists; pass --overwrite to replace it")
    tmp = temporary_path(out_path)
    try:
        with h5py.File(tmp, "w") as out:
            out.attrs["format"] = FORMAT_NAME
            for key, value in root_attrs.items():
                if isinstance(value, (dict, list)) and key != "classes":
                    value = json.dumps(value, sort_keys=True)
                out.attrs[key] = value
            videos = out.create_group(VIDEOS_GROUP)
            for shard in shard_paths:
                with h5py.File(shard, "r") as src:
                    for name in src[VIDEOS_GROUP]:
                        if name in videos:
                            raise ValueError(f"duplicate video name {name!r} (from {shard})")
                        src.copy(src[f"{VIDEOS_GROUP}/{name}"], videos, name=name)
        os.replace(tmp, out_path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return out_path


# ----------------------------------------------------------------------------- importers

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
    remove_stale_temporaries(out_path.parent)
    with tempfile.TemporaryDirectory(dir=out_path.parent, prefix=f".{out_path.name}.shards-{os.getpid()}-") as tmp:
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
