"""Flow cache: dense optical flow of every pair of consecutive frames of a dataset, computed once
(``tools/compute_flow.py``) and read lazily by :class:`vidal.tracking.flow.FlowTracker`
(thesis 2.3.2: "optical flow is only computed once at the beginning and can be used throughout
all cycles with a negligible overhead"). Documented for users in ``docs/flow.md``.

Format ``vidal-flow-v1`` (one HDF5 file per dataset file, by default next to it:
``train.h5`` -> ``train.flow.h5``)::

    /                         attrs: format = "vidal-flow-v1"
                                     method        "dis" | "raft" | "pwcnet" | "ground-truth" | ...
                                     method_options JSON dict (preset, weights path, ...)
                                     dataset       JSON list of the dataset file paths (absolute)
                                     fingerprint   sha256 hex of the JSON list
                                                   [[video name, n_frames, height, width], ...]
                                     videos        JSON list of the video names, dataset order
                                     dtype         "float16" or "float32"
                                     downsample    s >= 1 (absent in older v1 files: 1); s > 1 is
                                                   written as format "vidal-flow-v2", arrays
                                                   [T-1, ceil(H/s), ceil(W/s), 2] of s x s block
                                                   means, values in full-resolution pixels
                                     command, created_by, (epe_mean, epe_over_3px, epe_pixels)
    /videos/<name>/forward    [T-1, H, W, 2]  forward[t]  = flow frame t   -> t+1, (dx, dy) pixels
    /videos/<name>/backward   [T-1, H, W, 2]  backward[t] = flow frame t+1 -> t,   (dx, dy) pixels
                              attrs: complete = 1 once both arrays are fully written

A pixel ``(x, y)`` of frame t moves to ``(x + forward[t, y, x, 0], y + forward[t, y, x, 1])`` in
frame t+1 (the convention of the dataset's ground-truth ``flow``, OpenCV and torchvision).
Arrays are float16 rounded to 1/16 px (default; exact steps of 1/16 px below 128 px — ample for
moving boxes, and the coarse low bits let the shuffle + gzip filters halve the size: ~0.39 MB per
640x480 DIS flow frame instead of 1.2 MB raw) or float32 rounded to 1/256 px, chunked one frame per chunk,
byte shuffle + gzip level 1 (filters built into every HDF5); plain ``h5py`` reads them. A one-frame video has ``[0, H, W, 2]`` arrays.

The fingerprint ties a cache to a dataset: :meth:`FlowCache.check_dataset` refuses (one-line
:class:`FlowCacheError`) a cache made for other videos, other frame counts or another resolution.

Reading is lazy and fork-safe, as :class:`vidal.data.dataset.VideoDataset`: construction reads the
root attributes only; the file is (re)opened on first access in each process.
"""

from __future__ import annotations

import hashlib
import json
import os
from typing import Any, Sequence

import h5py
import numpy as np

FLOW_FORMAT = "vidal-flow-v1"
#: full-resolution caches are written as v1 (unchanged layout); caches stored at reduced
#: resolution (``downsample`` > 1) as v2, so that a reader that predates ``downsample`` refuses
#: them instead of misreading them. Both are read.
FLOW_FORMAT_V2 = "vidal-flow-v2"
FLOW_FORMATS = (FLOW_FORMAT, FLOW_FORMAT_V2)
DIRECTIONS = ("forward", "backward")
#: ``tools/compute_flow.py --downsample`` default: DIS flow is smooth at this scale (8 px
#: patches); on the 1 % SYNTHIA-AL test split (640x480) the stored flow is 0.066 px (mean EPE)
#: from the full-resolution one, temporal-coherence estimates are identical, and TC's own time
#: drops from 7.1 to 0.86 s (docs/flow.md).
DEFAULT_DOWNSAMPLE = 4


class FlowCacheError(ValueError):
    """A flow cache is missing, unreadable or made for another dataset; one-line message."""


#: HDF5 filters of the flow arrays. Reading a 640x480 float16 flow frame (one direction) took
#: 5.2 ms with gzip-1 + shuffle (0.26 MB), 3.9 ms with lzf (0.35 MB) and 0.55 ms uncompressed
#: (1.23 MB): decompression is what temporal coherence spends most of its time on, so "none" is the
#: fastest choice when disk space allows.
COMPRESSIONS = ("gzip", "lzf", "none")


def _py(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, np.generic):
        return value.item()
    return value


def video_signature(dataset) -> list[list[Any]]:
    """``[[name, n_frames, height, width], ...]`` of a ``VideoDataset`` (what a cache must match)."""
    return [[v.name, int(v.n_frames), int(v.height), int(v.width)] for v in dataset.videos]


def fingerprint(signature: Sequence[Sequence[Any]]) -> str:
    """sha256 hex digest of the JSON of a :func:`video_signature`."""
    text = json.dumps([list(s) for s in signature], separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def default_flow_path(dataset_path: str | os.PathLike) -> str:
    """``dir/train.h5`` -> ``dir/train.flow.h5`` (where tools and trackers look by default)."""
    path = os.fspath(dataset_path)
    stem = path[:-3] if path.endswith(".h5") else path
    return stem + ".flow.h5"


def stored_shape(height: int, width: int, downsample: int) -> tuple[int, int]:
    """``(rows, cols)`` of a flow frame stored at ``1/downsample`` of ``height x width``."""
    return -(-int(height) // downsample), -(-int(width) // downsample)


def downsample_flow(flow: np.ndarray, factor: int) -> np.ndarray:
    """Block mean of a flow frame ``[H,W,2]`` over ``factor x factor`` pixels ->
    ``[ceil(H/f), ceil(W/f), 2]`` float32; values stay in full-resolution pixels. Partial blocks at
    the right / bottom edge average the pixels they hold."""
    flow = np.asarray(flow, np.float32)
    if factor == 1:
        return flow
    h, w = flow.shape[:2]
    hs, ws = stored_shape(h, w, factor)
    ph, pw = hs * factor - h, ws * factor - w
    if ph or pw:  # weights so that partial edge blocks average only their own pixels
        ones = np.pad(np.ones((h, w, 1), np.float32), ((0, ph), (0, pw), (0, 0)))
        flow = np.pad(flow, ((0, ph), (0, pw), (0, 0)))
        num = flow.reshape(hs, factor, ws, factor, 2).sum((1, 3))
        den = ones.reshape(hs, factor, ws, factor, 1).sum((1, 3))
        return num / den
    return flow.reshape(hs, factor, ws, factor, 2).mean((1, 3))


def read_downsample(attrs: dict, path: str) -> int:
    """The ``downsample`` root attribute (1 when absent: ``vidal-flow-v1`` caches); a one-line
    :class:`FlowCacheError` naming the file and the field when it is not an integer >= 1."""
    value = attrs.get("downsample", 1)
    ok = isinstance(value, (int, np.integer)) and not isinstance(value, bool) and value >= 1
    if not ok and isinstance(value, float) and value.is_integer() and value >= 1:
        value, ok = int(value), True
    if not ok:
        raise FlowCacheError(f"{path}: root attribute 'downsample' is {value!r}, expected an integer >= 1")
    return int(value)


def quantise(flow: np.ndarray, dtype: str) -> np.ndarray:
    """Flow as stored: float16, or float32 rounded to 1/256 px."""
    if dtype == "float16":  # 1/16 px steps (exact in float16 below 128 px) compress far better
        return (np.round(np.asarray(flow, np.float32) * 16.0) / 16.0).astype(np.float16)
    if dtype == "float32":
        return (np.round(np.asarray(flow, np.float32) * 256.0) / 256.0).astype(np.float32)
    raise ValueError(f"flow cache dtype must be float16 or float32, not {dtype!r}")


class FlowCache:
    """Read access to a ``vidal-flow-v1`` file.

    Args:
        path: the ``.flow.h5`` file.

    Attributes:
        attrs: root attributes as Python values (``method``, ``fingerprint``, ...).
        videos: video names in dataset order.

    Raises:
        FlowCacheError: missing file, not HDF5, or not a ``vidal-flow-v1`` file.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = os.fspath(path)
        if not os.path.exists(self.path):
            raise FlowCacheError(f"{self.path}: no such flow cache; compute one with "
                                 f"python tools/compute_flow.py DATASET.h5 --out {self.path}")
        try:
            with h5py.File(self.path, "r") as f:
                self.attrs = {k: _py(v) for k, v in f.attrs.items()}
                complete = {name: bool(g.attrs.get("complete", 0)) for name, g in f.get("videos", {}).items()}
        except OSError as exc:
            raise FlowCacheError(f"{self.path}: cannot be opened as HDF5 ({exc})") from None
        if self.attrs.get("format") not in FLOW_FORMATS:
            raise FlowCacheError(f"{self.path}: root attribute 'format' is {self.attrs.get('format')!r}, "
                                 f"expected one of {', '.join(map(repr, FLOW_FORMATS))}")
        #: flow stored at 1/downsample of the frame size (values in full-resolution pixels)
        self.downsample = read_downsample(self.attrs, self.path)
        self.videos: list[str] = json.loads(self.attrs.get("videos", "[]"))
        missing = [n for n in self.videos if not complete.get(n)]
        if missing:
            raise FlowCacheError(f"{self.path}: flow of {len(missing)} video(s) is missing or incomplete "
                                 f"(first: {missing[0]}); rerun tools/compute_flow.py")
        self._pid: int | None = None
        self._file: h5py.File | None = None
        self._arrays: dict[tuple[str, str], h5py.Dataset] = {}

    @property
    def method(self) -> str:
        return str(self.attrs.get("method"))

    def check_dataset(self, dataset) -> None:
        """Raise :class:`FlowCacheError` unless this cache was computed for ``dataset``'s videos."""
        want = fingerprint(video_signature(dataset))
        if self.attrs.get("fingerprint") != want:
            made_for = self.attrs.get("dataset", "?")
            raise FlowCacheError(f"{self.path}: flow cache was computed for another dataset ({made_for}; "
                                 f"video names, frame counts or sizes differ from {dataset.paths}); "
                                 f"recompute it with tools/compute_flow.py")
        with h5py.File(self.path, "r") as f:
            for v in dataset.videos:
                want_shape = (max(int(v.n_frames) - 1, 0), *stored_shape(v.height, v.width, self.downsample), 2)
                for d in DIRECTIONS:
                    got = tuple(f[f"videos/{v.name}/{d}"].shape)
                    if got != want_shape:
                        raise FlowCacheError(f"{self.path}: videos/{v.name}/{d} has shape {got}, expected "
                                             f"{want_shape} (frames {v.height}x{v.width}, 'downsample' "
                                             f"{self.downsample})")

    def _handle(self) -> h5py.File:
        pid = os.getpid()
        if self._pid != pid or self._file is None:
            # after a fork, drop (do not close) the parent's handle, as VideoDataset does
            self._file, self._pid = h5py.File(self.path, "r"), pid
            self._arrays = {}
        return self._file

    def _array(self, name: str, direction: str) -> h5py.Dataset:
        """The h5py dataset of one video and direction, looked up once per open file (a path
        lookup costs ~0.1 ms, as much as decompressing a small flow frame)."""
        f = self._handle()
        ds = self._arrays.get((name, direction))
        if ds is None:
            ds = self._arrays[(name, direction)] = f[f"videos/{name}/{direction}"]
        return ds

    def read(self, name: str, direction: str, t: int | slice | None = None, dtype=np.float32) -> np.ndarray:
        """Flow of video ``name``: ``direction`` is ``forward`` (t -> t+1) or ``backward``
        (t+1 -> t); ``t`` an index or slice into the ``T-1`` pairs (None: all); frames of
        ``[ceil(H/downsample), ceil(W/downsample), 2]`` (values in full-resolution pixels). ``dtype`` float32
        by default; ``None`` keeps the stored type (float16: half the memory, and no conversion of
        the whole frame when only a few pixels are sampled)."""
        if direction not in DIRECTIONS:
            raise ValueError(f"direction must be one of {DIRECTIONS}, not {direction!r}")
        ds = self._array(name, direction)
        data = ds[() if t is None else t]
        return data if dtype is None else np.asarray(data, dtype=dtype)

    def close(self) -> None:
        if self._file is not None and self._pid == os.getpid():
            self._file.close()
        self._file, self._pid, self._arrays = None, None, {}

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_file"], state["_pid"], state["_arrays"] = None, None, {}
        return state

    def __enter__(self) -> "FlowCache":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class FlowCacheWriter:
    """Writes a ``vidal-flow-v1`` file to ``<out>.partial`` and renames it to ``out`` when every
    video is complete, so ``out`` is never a half-written file. A ``.partial`` left by an
    interrupted run with the same fingerprint, method and options is resumed: complete videos
    are kept (:meth:`done`), anything else is rewritten.

    Args:
        out: final path.
        dataset: the ``VideoDataset`` the flow belongs to.
        method, options: flow method name and its options (stored as JSON).
        dtype: ``float16`` or ``float32``.
        compression: ``gzip``, ``lzf`` or ``none`` (:data:`COMPRESSIONS`).
        downsample: store the flow at ``1/downsample`` of the frame size (block mean, values in
            full-resolution pixels); 1 writes a ``vidal-flow-v1`` file, more a ``vidal-flow-v2``.
        attrs: more root attributes (command, created_by, ...).
    """

    def __init__(self, out: str | os.PathLike, dataset, *, method: str, options: dict | None = None,
                 dtype: str = "float16", attrs: dict | None = None, compression: str = "gzip",
                 downsample: int = 1):
        quantise(np.zeros(1), dtype)  # validates dtype
        if isinstance(downsample, bool) or not isinstance(downsample, (int, np.integer)) or downsample < 1:
            raise FlowCacheError(f"downsample must be an integer >= 1, got {downsample!r}")
        self.downsample = int(downsample)
        if compression not in COMPRESSIONS:
            raise FlowCacheError(f"compression must be one of {', '.join(COMPRESSIONS)}, got {compression!r}")
        self.compression = compression
        names = [v.name for v in dataset.videos]
        if len(set(names)) != len(names):
            raise FlowCacheError(f"video names repeat across {dataset.paths}; compute one flow cache per file")
        self.out = os.fspath(out)
        self.partial = self.out + ".partial"
        self.dataset, self.dtype = dataset, dtype
        want = {
            "format": FLOW_FORMAT if self.downsample == 1 else FLOW_FORMAT_V2,
            "method": method,
            "method_options": json.dumps(options or {}, sort_keys=True),
            "dataset": json.dumps([os.path.abspath(p) for p in dataset.paths]),
            "fingerprint": fingerprint(video_signature(dataset)),
            "videos": json.dumps(names),
            "dtype": dtype,
            "downsample": self.downsample,
        }
        self.resumed = 0
        f = None
        if os.path.exists(self.partial):
            try:
                f = h5py.File(self.partial, "a")
                same = all(_py(f.attrs.get(k, 1 if k == "downsample" else None)) == want[k]
                           for k in ("format", "method", "method_options", "fingerprint", "dtype", "downsample"))
            except OSError:
                same = False
            if not same:
                if f is not None:
                    f.close()
                f = None
                os.remove(self.partial)
        if f is None:
            os.makedirs(os.path.dirname(os.path.abspath(self.out)), exist_ok=True)
            f = h5py.File(self.partial, "w")
        for k, val in {**want, **(attrs or {})}.items():
            f.attrs[k] = val
        f.require_group("videos")
        self._f = f
        self.resumed = sum(self.done(n) for n in names)

    def done(self, name: str) -> bool:
        """True when the flow of video ``name`` is already complete (resumed run)."""
        g = self._f["videos"].get(name)
        return g is not None and bool(g.attrs.get("complete", 0))

    def begin_video(self, video: int) -> tuple[h5py.Dataset, h5py.Dataset]:
        """(forward, backward) datasets ``[T-1,H,W,2]`` of video index ``video`` (recreated)."""
        info = self.dataset.videos[video]
        videos = self._f["videos"]
        if info.name in videos:
            del videos[info.name]
        g = videos.create_group(info.name)
        g.attrs["complete"] = 0
        rows, cols = stored_shape(info.height, info.width, self.downsample)
        shape = (max(info.n_frames - 1, 0), rows, cols, 2)
        chunks = (1, rows, cols, 2) if shape[0] else None
        packed = bool(chunks) and self.compression != "none"
        out = tuple(g.create_dataset(d, shape=shape, dtype=self.dtype, chunks=chunks,
                                     compression=self.compression if packed else None,
                                     compression_opts=1 if packed and self.compression == "gzip" else None,
                                     shuffle=packed) for d in DIRECTIONS)
        return out  # type: ignore[return-value]

    def write(self, ds: h5py.Dataset, t: int, flow: np.ndarray) -> None:
        """Store full-resolution flow ``[H,W,2]`` (block-averaged when ``downsample`` > 1)."""
        ds[t] = quantise(downsample_flow(flow, self.downsample), self.dtype)

    def end_video(self, video: int) -> None:
        self._f["videos"][self.dataset.videos[video].name].attrs["complete"] = 1
        self._f.flush()

    def set_attrs(self, **attrs: Any) -> None:
        for k, v in attrs.items():
            self._f.attrs[k] = v

    def finish(self) -> str:
        """Close and atomically rename ``.partial`` to ``out``; returns ``out``."""
        missing = [v.name for v in self.dataset.videos if not self.done(v.name)]
        if missing:
            raise FlowCacheError(f"{self.partial}: {len(missing)} video(s) incomplete (first: {missing[0]})")
        self._f.close()
        os.replace(self.partial, self.out)
        return self.out

    def close(self) -> None:
        """Close without renaming (the ``.partial`` stays, to be resumed)."""
        if self._f.id.valid:
            self._f.close()
