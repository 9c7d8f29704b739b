"""``VideoDataset``: frames and ground truth of one or more ``vidal-video-v1`` files.

A frame is addressed either by ``(video_index, frame_index)`` or by a flat global index
``0 <= i < len(dataset)``; videos are numbered in file order, then in the (sorted) order of
their group names inside each file, and the frames of a video are contiguous in the flat
index::

    ds = VideoDataset(["train.h5"])
    i = ds.index_of(3, 10)           # video 3, frame 10  ->  flat index
    assert ds.locate(i) == (3, 10)
    sample = ds[i]                   # dict, see ``VideoDataset.__getitem__``

Reading is lazy and fork-safe: construction reads only the metadata (and closes the files);
HDF5 files are opened on first access *in each process* (the opener's pid is remembered and
files are reopened after a fork), so the dataset can be handed to a ``torch.utils.data``
``DataLoader`` with worker processes. The small per-box arrays of a video are read once per
process and cached; a frame is one HDF5 chunk, decompressed on access.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

import h5py
import numpy as np

from vidal.data.h5format import BOX_ARRAYS, FORMAT_NAME, VIDEO_ARRAYS, VIDEOS_GROUP


class DatasetFormatError(ValueError):
    """A file is not a (readable) ``vidal-video-v1`` file; the message names file and problem."""


@dataclass(frozen=True)
class VideoInfo:
    """Metadata of one video of a ``VideoDataset``.

    Attributes:
        name: group name (``videos/<name>``) in ``file``.
        file: the HDF5 file holding it.
        n_frames, height, width: T, H, W.
        offset: flat index of its frame 0.
        attrs: all per-video attributes (subset, area, season, ...), as Python values.
    """

    name: str
    file: str
    n_frames: int
    height: int
    width: int
    offset: int
    attrs: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def frames(self) -> range:
        """Flat indices of the frames of this video."""
        return range(self.offset, self.offset + self.n_frames)


def _py(value: Any) -> Any:
    """An HDF5 attribute value as a plain Python value (str, int, float, list)."""
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, np.ndarray):
        return [_py(v) for v in value.tolist()]
    if isinstance(value, np.generic):
        return value.item()
    return value


def _open(path: str) -> h5py.File:
    """Open ``path`` read-only, turning h5py's errors into a ``DatasetFormatError``."""
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path}: no such file")
    try:
        return h5py.File(path, "r")
    except OSError as exc:
        raise DatasetFormatError(f"{path}: cannot be opened as HDF5 ({exc}); "
                                 f"expected a {FORMAT_NAME} file") from None


def _read_metadata(path: str) -> tuple[dict[str, Any], list[tuple[str, dict[str, Any], tuple[int, int, int]]]]:
    """(root attrs, [(video name, attrs, (T, H, W))]) of one file, checking its structure."""
    with _open(path) as f:
        fmt = _py(f.attrs.get("format"))
        if fmt != FORMAT_NAME:
            raise DatasetFormatError(f"{path}: root attribute 'format' is {fmt!r}, expected {FORMAT_NAME!r} "
                                     f"(check the file with tools/validate_dataset.py)")
        if "classes" not in f.attrs:
            raise DatasetFormatError(f"{path}: root attribute 'classes' is missing")
        root = {k: _py(a) for k, a in f.attrs.items()}
        root["classes"] = [str(c) for c in root["classes"]] if isinstance(root["classes"], list) else None
        if not root["classes"]:
            raise DatasetFormatError(f"{path}: root attribute 'classes' is not a non-empty list of names")
        group = f.get(VIDEOS_GROUP)
        if not isinstance(group, h5py.Group):
            raise DatasetFormatError(f"{path}: group '{VIDEOS_GROUP}' is missing")
        videos = []
        for name in sorted(group):
            v = group[name]
            where = f"{path}: {VIDEOS_GROUP}/{name}"
            if not isinstance(v, h5py.Group):
                raise DatasetFormatError(f"{where}: is not a group")
            for key in VIDEO_ARRAYS:
                if not isinstance(v.get(key), h5py.Dataset):
                    raise DatasetFormatError(f"{where}/{key}: is missing (a required dataset)")
            shape = v["frames"].shape
            if len(shape) != 4 or shape[3] != 3:
                raise DatasetFormatError(f"{where}/frames: has shape {shape}, expected [T,H,W,3]")
            videos.append((name, {k: _py(a) for k, a in v.attrs.items()}, tuple(int(s) for s in shape[:3])))
    return root, videos


class VideoDataset:
    """Frames and per-frame ground truth of one or more ``vidal-video-v1`` files.

    Args:
        paths: one path or a list of paths of ``.h5`` files; all must have the same classes.
        with_frames: decode the image in ``__getitem__`` (False: ground truth only, cheap).

    Attributes:
        classes: class names; class id ``k`` (1..C) is ``classes[k-1]``.
        videos: ``VideoInfo`` per video, in flat-index order.
        fps: frames per second (of the first file).
        file_attrs: root attributes of each file (split, command, created_by, ...).

    Raises:
        DatasetFormatError: a file is not a ``vidal-video-v1`` file (message names file and problem),
            or the files disagree on ``classes``.
        FileNotFoundError: a path does not exist.
    """

    def __init__(self, paths: str | os.PathLike | Sequence[str | os.PathLike], *, with_frames: bool = True):
        if isinstance(paths, (str, os.PathLike)):
            paths = [paths]
        self.paths = [os.fspath(p) for p in paths]
        if not self.paths:
            raise ValueError("VideoDataset needs at least one file")
        self.with_frames = bool(with_frames)
        self.classes: list[str] = []
        self.fps = 0.0
        self.file_attrs: list[dict[str, Any]] = []
        self.videos: list[VideoInfo] = []
        self._video_file: list[int] = []
        offset = 0
        for k, path in enumerate(self.paths):
            root, videos = _read_metadata(path)
            self.file_attrs.append(root)
            classes = root["classes"]
            if k == 0:
                self.classes, self.fps = classes, float(root.get("fps", 0.0))
            elif classes != self.classes:
                raise DatasetFormatError(f"{path}: classes {classes} differ from {self.classes} "
                                         f"of {self.paths[0]}; files of one dataset must share classes")
            for name, attrs, (T, H, W) in videos:
                self.videos.append(VideoInfo(name, path, T, H, W, offset, attrs))
                self._video_file.append(k)
                offset += T
        #: flat index of frame 0 of each video, plus the total at the end: int64 [V+1]
        self._offsets = np.array([v.offset for v in self.videos] + [offset], np.int64)
        self._pid: int | None = None
        self._files: dict[int, h5py.File] = {}
        self._frames: dict[int, h5py.Dataset] = {}
        self._ann: dict[int, dict[str, np.ndarray]] = {}

    # ------------------------------------------------------------------ indexing

    def __len__(self) -> int:
        """Total number of frames."""
        return int(self._offsets[-1])

    @property
    def n_videos(self) -> int:
        return len(self.videos)

    @property
    def num_classes(self) -> int:
        """C (class ids are 1..C; 0 is background)."""
        return len(self.classes)

    def index_of(self, video: int, frame: int) -> int:
        """Flat index of frame ``frame`` of video ``video``."""
        if not 0 <= video < len(self.videos):
            raise IndexError(f"video index {video} out of range 0..{len(self.videos) - 1}")
        n = self.videos[video].n_frames
        if not 0 <= frame < n:
            raise IndexError(f"frame index {frame} out of range 0..{n - 1} of video {video} "
                             f"({self.videos[video].name})")
        return int(self._offsets[video]) + int(frame)

    def locate(self, index: int) -> tuple[int, int]:
        """``(video_index, frame_index)`` of flat index ``index`` (negative counts from the end)."""
        n = len(self)
        i = int(index)
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError(f"frame index {index} out of range for {n} frames")
        v = int(np.searchsorted(self._offsets, i, side="right")) - 1
        return v, i - int(self._offsets[v])

    def locate_many(self, indices: Iterable[int]) -> tuple[np.ndarray, np.ndarray]:
        """Vectorised ``locate``: (video indices int64 [N], frame indices int64 [N])."""
        i = np.asarray(list(indices) if not isinstance(indices, np.ndarray) else indices, np.int64)
        if i.size and (i.min() < 0 or i.max() >= len(self)):
            raise IndexError(f"frame indices must be in 0..{len(self) - 1}")
        v = np.searchsorted(self._offsets, i, side="right") - 1
        return v, i - self._offsets[v]

    def frames_of_video(self, video: int) -> range:
        """Flat indices of the frames of video ``video``."""
        if not 0 <= video < len(self.videos):
            raise IndexError(f"video index {video} out of range 0..{len(self.videos) - 1}")
        return self.videos[video].frames

    def video_of_frames(self) -> np.ndarray:
        """Video index of every flat frame index: int64 [len(self)]."""
        return np.repeat(np.arange(len(self.videos), dtype=np.int64), np.diff(self._offsets))

    # ------------------------------------------------------------------ file handles

    def _check_process(self) -> None:
        """Forget handles opened by another process (we were forked, e.g. a DataLoader worker)."""
        pid = os.getpid()
        if self._pid != pid:
            # The parent's handles are not closed here: closing a forked HDF5 id could touch
            # state shared with the parent. Dropping our references is enough.
            self._files, self._frames = {}, {}
            self._pid = pid

    def _file(self, k: int) -> h5py.File:
        self._check_process()
        f = self._files.get(k)
        if f is None:
            f = self._files[k] = _open(self.paths[k])
        return f

    def _group(self, video: int) -> h5py.Group:
        return self._file(self._video_file[video])[f"{VIDEOS_GROUP}/{self.videos[video].name}"]

    def close(self) -> None:
        """Close the files opened by this process (they reopen on the next access)."""
        if self._pid == os.getpid():
            for f in self._files.values():
                f.close()
        self._files, self._frames = {}, {}

    def __enter__(self) -> "VideoDataset":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __getstate__(self) -> dict:
        # Pickled for spawn-started workers: handles never travel, annotations may.
        state = self.__dict__.copy()
        state["_files"], state["_frames"], state["_pid"] = {}, {}, None
        return state

    # ------------------------------------------------------------------ reading

    def annotations(self, video: int) -> dict[str, np.ndarray]:
        """All per-box arrays of video ``video`` (read once per process, then cached).

        Returns:
            ``boxes`` float32 [M,4] (x1, y1, x2, y2 pixels), ``labels`` / ``track_ids`` /
            ``frame_index`` int32 [M], ``visible_fraction`` / ``truncation`` / ``occlusion``
            float32 [M]; rows sorted by ``frame_index``. Treat them as read-only.
        """
        ann = self._ann.get(video)
        if ann is None:
            g = self._group(video)
            ann = {key: g[key][()] for key in BOX_ARRAYS}
            ann["boxes"] = ann["boxes"].reshape(-1, 4)
            self._ann[video] = ann
        return ann

    def ground_truth(self, index: int) -> dict[str, Any]:
        """Ground truth of flat frame ``index``, without decoding the image.

        Returns:
            dict with ``boxes`` float32 [N,4] (x1, y1, x2, y2 pixels), ``labels`` int64 [N]
            (1..C), ``track_ids`` int64 [N] (>= 1), ``occlusion``, ``truncation``,
            ``visible_fraction`` float32 [N], and ``video_index``, ``frame_index``, ``index``
            (ints), ``height``, ``width``.
        """
        v, t = self.locate(index)
        ann = self.annotations(v)
        lo, hi = np.searchsorted(ann["frame_index"], [t, t + 1])
        info = self.videos[v]
        return {
            "boxes": ann["boxes"][lo:hi].astype(np.float32, copy=True),
            "labels": ann["labels"][lo:hi].astype(np.int64),
            "track_ids": ann["track_ids"][lo:hi].astype(np.int64),
            "occlusion": ann["occlusion"][lo:hi].astype(np.float32, copy=True),
            "truncation": ann["truncation"][lo:hi].astype(np.float32, copy=True),
            "visible_fraction": ann["visible_fraction"][lo:hi].astype(np.float32, copy=True),
            "video_index": v,
            "frame_index": t,
            "index": info.offset + t,
            "height": info.height,
            "width": info.width,
        }

    def image(self, index: int) -> np.ndarray:
        """Frame ``index`` as uint8 [H,W,3] RGB (one HDF5 chunk read)."""
        v, t = self.locate(index)
        self._check_process()
        ds = self._frames.get(v)
        if ds is None:
            ds = self._frames[v] = self._group(v)["frames"]
        return ds[t]

    def __getitem__(self, index: int) -> dict[str, Any]:
        """Sample of flat frame ``index``: ``ground_truth(index)`` plus ``image`` uint8 [H,W,3]
        RGB when the dataset was built ``with_frames=True``."""
        sample = self.ground_truth(index)
        if self.with_frames:
            sample["image"] = self.image(index)
        return sample

    def __iter__(self):
        for i in range(len(self)):
            yield self[i]

    def __repr__(self) -> str:
        return (f"VideoDataset({len(self.paths)} file(s), {len(self.videos)} videos, {len(self)} frames, "
                f"classes={self.classes})")


def collate(batch: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """DataLoader ``collate_fn`` for detection: keep the samples as a list.

    Frames hold different numbers of boxes (and videos may differ in size), so samples are not
    stacked; a detector takes a list of images and a list of targets, as torchvision's.
    """
    return list(batch)
