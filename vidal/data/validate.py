"""Check an HDF5 file against the ``vidal-video-v1`` contract (docs/format.md).

``validate_file(path)`` returns one human-readable line per problem (an empty list means the
file is valid). Every line names the file, the video group and the field, says what is wrong
and what was expected, e.g.::

    train.h5: videos/default_0003/boxes: row 17 has x2 <= x1 (x1=10.0, x2=9.5); expected 0 <= x1 < x2 <= W=32

By default all annotation arrays are read but only the first and last chunk of each dense
array (frames, masks, depth, flow), so a check of a large file takes well under a second;
``deep=True`` decompresses every chunk, which finds corrupt compressed chunks.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from typing import Callable, Iterable

import h5py
import numpy as np

from vidal.data.h5format import (BOX_ARRAYS, DENSE_ARRAYS, FORMAT_NAME, ROOT_ATTRS, VIDEO_ARRAYS,
                                 VIDEO_ATTRS, VIDEO_NAME_RULE, VIDEOS_GROUP, video_name_problem)

#: At most this many offending rows (or frames) are listed per check; the rest are counted.
MAX_ROWS = 5

#: Integer per-video attributes; the other ``VIDEO_ATTRS`` are strings.
_INT_VIDEO_ATTRS = ("n_frames", "height", "width", "seed")

_MISSING = object()


@dataclass
class Report:
    """Result of checking one file: its problems and, for the summary line, its size."""

    path: str
    problems: list[str] = field(default_factory=list)
    n_videos: int = 0
    n_frames: int = 0
    n_boxes: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems

    def add(self, where: str | None, message: str) -> None:
        """Record ``message`` about the object at HDF5 path ``where`` (None: the file)."""
        self.problems.append(f"{self.path}: {where}: {message}" if where else f"{self.path}: {message}")


def validate_file(path: str | os.PathLike, *, deep: bool = False) -> list[str]:
    """Problems of the file at ``path``, one line each; an empty list means it is valid."""
    return check_file(path, deep=deep).problems


def validated(paths, *, deep: bool = False) -> list[str]:
    """The paths (one or a list) as strings, after checking every file; the check tools run
    before they read a dataset or write anything.

    Raises:
        DatasetFormatError: one line: the first problem (file, video, field, what was expected),
            how many more there are, and the fix.
    """
    from vidal.data.dataset import DatasetFormatError

    paths = [os.fspath(paths)] if isinstance(paths, (str, os.PathLike)) else [os.fspath(p) for p in paths]
    for path in paths:
        problems = check_file(path, deep=deep).problems
        if problems:
            more = f" (and {len(problems) - 1} more problems)" if len(problems) > 1 else ""
            first = " ".join(problems[0].split())
            raise DatasetFormatError(f"{first}{more}; not a valid {FORMAT_NAME} file: list its problems with "
                                     f"python tools/validate_dataset.py {path}, then fix or regenerate it")
    return paths


def open_dataset(paths, *, deep: bool = False, **kwargs):
    """:class:`vidal.data.VideoDataset` of ``paths`` after :func:`validated` (same errors)."""
    from vidal.data.dataset import VideoDataset

    return VideoDataset(validated(paths, deep=deep), **kwargs)


def check_file(path: str | os.PathLike, *, deep: bool = False) -> Report:
    """Check the file at ``path``; never raises for a bad file, it reports it.

    Args:
        deep: also decompress every chunk of every dense array (slow on big files).
    """
    report = Report(os.fspath(path))
    if not os.path.exists(path):
        report.add(None, "no such file")
        return report
    if os.path.isdir(path):
        report.add(None, "is a directory, expected a vidal-video-v1 HDF5 file")
        return report
    try:
        f = h5py.File(path, "r")
    except PermissionError as exc:
        report.add(None, f"cannot be read: {exc}")
        return report
    except Exception as exc:  # h5py raises OSError, but be safe: a bad file must not crash us
        if _has_hdf5_signature(path):
            report.add(None, f"cannot be opened as HDF5 (truncated or corrupt file?): {exc}")
        else:
            report.add(None, "not an HDF5 file (no HDF5 signature); expected a vidal-video-v1 file")
        return report
    with f:
        try:
            _check_open_file(f, report, deep)
        except Exception as exc:  # a corrupt file can make h5py fail anywhere
            report.add(None, f"unreadable (corrupt file?): {type(exc).__name__}: {exc}")
    return report


def _has_hdf5_signature(path) -> bool:
    try:
        return bool(h5py.is_hdf5(path))
    except Exception:
        return False


# ---------------------------------------------------------------------------------------------
# file and root attributes

def _check_open_file(f: h5py.File, report: Report, deep: bool) -> None:
    n_classes = _check_root_attrs(f.attrs, report)
    videos = f.get(VIDEOS_GROUP)
    if videos is None:
        report.add(None, f"group '{VIDEOS_GROUP}' is missing (expected one subgroup per video)")
        return
    if not isinstance(videos, h5py.Group):
        report.add(VIDEOS_GROUP, "is not a group (expected one subgroup per video)")
        return
    if len(videos) == 0:
        report.add(VIDEOS_GROUP, "is empty (expected at least one video)")
    for name in videos:
        where = f"{VIDEOS_GROUP}/{name}"
        problem = video_name_problem(name)
        if problem:
            report.add(VIDEOS_GROUP, f"video name {problem}; expected {VIDEO_NAME_RULE}")
        try:
            group = videos[name]
            if not isinstance(group, h5py.Group):
                report.add(where, "is not a group (expected a video group)")
                continue
            n_frames, n_boxes = _check_video(group, where, n_classes, report, deep)
        except Exception as exc:
            report.add(where, f"unreadable (corrupt file?): {type(exc).__name__}: {exc}")
            continue
        report.n_videos += 1
        report.n_frames += n_frames
        report.n_boxes += n_boxes


def _check_root_attrs(attrs, report: Report) -> int | None:
    """Check the root attributes; return C (the number of classes) if ``classes`` is valid."""
    values = {key: _read_attr(attrs, key, "root attribute", None, report) for key in ROOT_ATTRS}

    def bad(key, message):
        report.add(None, f"root attribute '{key}': {message}")

    fmt = values["format"]
    if fmt is not _MISSING and _as_str(fmt) != FORMAT_NAME:
        bad("format", f"is {_show(fmt)}, expected {FORMAT_NAME!r}")
    for key in ("split", "command", "created_by", "generator_config"):
        if values[key] is not _MISSING and _as_str(values[key]) is None:
            bad(key, f"is {_show(values[key])}, expected a string")
    config = _as_str(values["generator_config"])
    if config is not None:
        try:
            json.loads(config)
        except ValueError as exc:
            bad("generator_config", f"is not valid JSON ({exc}); expected the generator config as JSON")
    fps = values["fps"]
    if fps is not _MISSING and not (_is_number(fps) and math.isfinite(fps) and fps > 0):
        bad("fps", f"is {_show(fps)}, expected a number > 0")
    seed = values["seed"]
    if seed is not _MISSING and not _is_int(seed):
        bad("seed", f"is {_show(seed)}, expected an integer (-1 for imported data)")

    classes = values["classes"]
    if classes is _MISSING:
        return None
    if not (isinstance(classes, np.ndarray) and classes.ndim == 1):
        bad("classes", f"is {_show(classes)}, expected a 1-D array of class names")
        return None
    if len(classes) == 0:
        bad("classes", "is empty, expected at least one class name")
        return None
    names = [_as_str(c) for c in classes]
    if any(not n for n in names):
        bad("classes", f"is {_show(classes)}, expected non-empty strings")
    return len(classes)


# ---------------------------------------------------------------------------------------------
# one video

def _check_video(g: h5py.Group, where: str, n_classes: int | None, report: Report,
                 deep: bool) -> tuple[int, int]:
    """Check one video group; return (T, M) as far as they could be determined."""
    attrs = _check_video_attrs(g, where, report)
    arrays = {}
    for key, (code, ndim) in VIDEO_ARRAYS.items():
        ds = _get_dataset(g, key, where, report, required=True)
        if ds is None:
            continue
        _check_dtype(ds, code, f"{where}/{key}", report)
        if ds.ndim != ndim:
            report.add(f"{where}/{key}", f"has shape {ds.shape}, expected {ndim} dimensions")
            continue
        arrays[key] = ds

    T, H, W = attrs.get("n_frames"), attrs.get("height"), attrs.get("width")
    frames = arrays.get("frames")
    if frames is not None:
        _check_frames(frames, attrs, f"{where}/frames", report, deep)
        T, H, W = frames.shape[:3]
    M = _check_box_arrays(arrays, where, T, H, W, n_classes, report)
    for key, code in DENSE_ARRAYS.items():
        ds = _get_dataset(g, key, where, report, required=False)
        if ds is not None:
            _check_dense(ds, key, code, f"{where}/{key}", T, H, W, report, deep)
    return (frames.shape[0] if frames is not None else 0), M


def _check_video_attrs(g: h5py.Group, where: str, report: Report) -> dict[str, int]:
    """Check the per-video attributes; return the valid integer ones."""
    ints = {}
    for key in VIDEO_ATTRS:
        value = _read_attr(g.attrs, key, "attribute", where, report)
        if value is _MISSING:
            continue
        if key in _INT_VIDEO_ATTRS:
            if not _is_int(value):
                report.add(where, f"attribute '{key}': is {_show(value)}, expected an integer")
            elif key != "seed" and value < 1:
                report.add(where, f"attribute '{key}': is {value}, expected >= 1")
            else:
                ints[key] = int(value)
        elif _as_str(value) is None:
            report.add(where, f"attribute '{key}': is {_show(value)}, expected a string")
    return ints


def _check_frames(ds: h5py.Dataset, attrs: dict[str, int], where: str, report: Report,
                  deep: bool) -> None:
    T, H, W, channels = ds.shape
    if channels != 3:
        report.add(where, f"has shape {ds.shape}, expected [T,H,W,3] (RGB)")
    if T < 1:
        report.add(where, f"has {T} frames, expected T >= 1")
    for key, actual, what in (("n_frames", T, "frames"), ("height", H, "rows (H)"),
                              ("width", W, "columns (W)")):
        if key in attrs and attrs[key] != actual:
            report.add(where, f"has {actual} {what} but attribute {key} is {attrs[key]}; expected them equal")
    _read_chunks(ds, where, deep, report)


def _check_dense(ds: h5py.Dataset, key: str, code: str, where: str, T, H, W, report: Report,
                 deep: bool) -> None:
    """Check an optional dense array (masks, depth, flow): dtype, shape, readable chunks."""
    _check_dtype(ds, code, where, report)
    expected = (None if T is None else T - 1, H, W, 2) if key == "flow" else (T, H, W)
    layout = "[T-1,H,W,2]" if key == "flow" else "[T,H,W]"
    if ds.ndim != len(expected) or any(e is not None and s != e for s, e in zip(ds.shape, expected)):
        shown = tuple("?" if e is None else e for e in expected)
        report.add(where, f"has shape {ds.shape}, expected {layout} = {shown}")
        return
    check = None
    if key == "depth":
        check = lambda a: "has NaN or negative depth" if (np.isnan(a) | (a < 0)).any() else None
    elif key == "flow":
        check = lambda a: "has non-finite flow" if not np.isfinite(a).all() else None
    _read_chunks(ds, where, deep, report, check if deep else None)


def _read_chunks(ds: h5py.Dataset, where: str, deep: bool, report: Report,
                 check: Callable[[np.ndarray], str | None] | None = None) -> None:
    """Decompress frame t of ``ds`` for t in {0, T-1} (every t when ``deep``); report failures."""
    n = ds.shape[0]
    indices: Iterable[int] = range(n) if deep else sorted({0, n - 1} if n > 0 else set())
    bad = []
    for t in indices:
        try:
            chunk = ds[t]
        except Exception as exc:
            bad.append(f"frame {t} cannot be read (corrupt or truncated chunk?): {exc}")
            continue
        message = check(chunk) if check else None
        if message:
            bad.append(f"frame {t} {message}")
    for line in bad[:MAX_ROWS]:
        report.add(where, line)
    if len(bad) > MAX_ROWS:
        report.add(where, f"{len(bad) - MAX_ROWS} more frames with problems (not listed)")


# ---------------------------------------------------------------------------------------------
# per-box arrays

def _check_box_arrays(arrays: dict[str, h5py.Dataset], where: str, T, H, W,
                      n_classes: int | None, report: Report) -> int:
    """Check lengths and values of the per-box arrays; return M."""
    present = {key: arrays[key] for key in BOX_ARRAYS if key in arrays}
    if not present:
        return 0
    source = "boxes" if "boxes" in present else next(iter(present))
    M = present[source].shape[0]
    if "boxes" in present and present["boxes"].shape[1] != 4:
        report.add(f"{where}/boxes", f"has shape {present['boxes'].shape}, expected [M,4] (x1, y1, x2, y2)")
        del present["boxes"]
    data = {}
    for key, ds in present.items():
        if ds.shape[0] != M:
            report.add(f"{where}/{key}", f"has length {ds.shape[0]}, expected M={M} (the length of {source})")
        elif ds.dtype.kind in "iuf":  # a non-numeric dtype was reported by _check_dtype
            data[key] = ds[()]

    def rows(key, bad, what, detail, expected):
        _report_rows(report, f"{where}/{key}", bad, what, detail, expected)

    if "boxes" in data:
        _check_boxes(data["boxes"], W, H, lambda *a: rows("boxes", *a))
    if "labels" in data:
        lab = data["labels"]
        upper = n_classes if n_classes is not None else np.inf
        span = f"1..{n_classes}" if n_classes is not None else "1..C"
        rows("labels", (lab < 1) | (lab > upper), f"a label outside {span}", lambda i: f"label={lab[i]}",
             f"a class id in {span} (C = number of classes)")
    if "track_ids" in data:
        tid = data["track_ids"]
        rows("track_ids", tid < 1, "track_id < 1", lambda i: f"track_id={tid[i]}", "track ids >= 1")
    if "frame_index" in data:
        fi = data["frame_index"]
        if T is not None:
            rows("frame_index", (fi < 0) | (fi >= T), f"frame_index outside 0..{T - 1}",
                 lambda i: f"frame_index={fi[i]}, T={T}", "a frame of the video, 0..T-1")
        dec = np.zeros(len(fi), bool)
        dec[1:] = fi[1:] < fi[:-1]
        rows("frame_index", dec, "a frame_index smaller than the row before",
             lambda i: f"frame_index={fi[i]} after {fi[i - 1]}", "non-decreasing frame_index (rows sorted by frame)")
        if "track_ids" in data:
            tid = data["track_ids"]
            order = np.lexsort((tid, fi))
            dup = np.zeros(len(fi), bool)
            dup[order[1:]] = (fi[order[1:]] == fi[order[:-1]]) & (tid[order[1:]] == tid[order[:-1]])
            rows("track_ids", dup, "a track_id repeated within its frame",
                 lambda i: f"track_id={tid[i]}, frame_index={fi[i]}", "each track at most once per frame")
    if "visible_fraction" in data:
        v = data["visible_fraction"]
        rows("visible_fraction", ~((v > 0) & (v <= 1)), "visible_fraction outside (0, 1]",
             lambda i: f"visible_fraction={v[i]}", "0 < visible_fraction <= 1")
    for key in ("truncation", "occlusion"):
        if key in data:
            v = data[key]
            rows(key, ~((v >= 0) & (v < 1)), f"{key} outside [0, 1)", lambda i, v=v, key=key: f"{key}={v[i]}",
                 f"0 <= {key} < 1")
    return M


def _check_boxes(b: np.ndarray, W, H, rows) -> None:
    """Check ``x1, y1, x2, y2`` rows: finite, ``0 <= x1 < x2 <= W``, ``0 <= y1 < y2 <= H``."""
    x1, y1, x2, y2 = b.T
    ok = np.isfinite(b).all(axis=1)
    rows(~ok, "a non-finite coordinate", lambda i: f"x1={x1[i]}, y1={y1[i]}, x2={x2[i]}, y2={y2[i]}",
         "finite pixel coordinates")
    for lo, hi, a, c, size, S in (("x1", "x2", x1, x2, W, "W"), ("y1", "y2", y1, y2, H, "H")):
        bound = f"{S}={size}" if size is not None else S
        expected = f"0 <= {lo} < {hi} <= {bound}"
        rows(ok & (a < 0), f"{lo} < 0", lambda i, a=a, lo=lo: f"{lo}={a[i]}", expected)
        rows(ok & (c <= a), f"{hi} <= {lo}", lambda i, a=a, c=c, lo=lo, hi=hi: f"{lo}={a[i]}, {hi}={c[i]}",
             expected)
        if size is not None:
            rows(ok & (c > size), f"{hi} > {S}", lambda i, c=c, hi=hi: f"{hi}={c[i]}, {S}={size}", expected)


def _report_rows(report: Report, where: str, bad: np.ndarray, what: str,
                 detail: Callable[[int], str], expected: str) -> None:
    """Report the rows where ``bad`` is true: the first ``MAX_ROWS`` in full, then a count."""
    idx = np.flatnonzero(bad)
    for i in idx[:MAX_ROWS]:
        report.add(where, f"row {i} has {what} ({detail(i)}); expected {expected}")
    if len(idx) > MAX_ROWS:
        report.add(where, f"{len(idx) - MAX_ROWS} more rows have {what} (not listed)")


# ---------------------------------------------------------------------------------------------
# small helpers

def _get_dataset(g: h5py.Group, key: str, where: str, report: Report, *, required: bool):
    """``g[key]`` if it is a dataset; report it missing (when required) or not a dataset."""
    obj = g.get(key)
    if obj is None:
        if required:
            report.add(f"{where}/{key}", "is missing (a required dataset of every video)")
        return None
    if not isinstance(obj, h5py.Dataset):
        report.add(f"{where}/{key}", f"is a {type(obj).__name__}, expected a dataset")
        return None
    return obj


def _check_dtype(ds: h5py.Dataset, code: str, where: str, report: Report) -> None:
    want = np.dtype(code)
    if ds.dtype.kind != want.kind or ds.dtype.itemsize != want.itemsize:
        report.add(where, f"has dtype {ds.dtype}, expected {want}")


def _read_attr(attrs, key: str, kind: str, where: str | None, report: Report):
    """``attrs[key]``, or ``_MISSING`` after reporting it missing or unreadable."""
    if key not in attrs:
        report.add(where, f"{kind} '{key}': is missing")
        return _MISSING
    try:
        return attrs[key]
    except Exception as exc:
        report.add(where, f"{kind} '{key}': cannot be read: {exc}")
        return _MISSING


def _as_str(value) -> str | None:
    """``value`` as a str if it is a (byte) string, else None."""
    if isinstance(value, (bytes, np.bytes_)):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            return None
    return str(value) if isinstance(value, (str, np.str_)) else None


def _is_int(value) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def _is_number(value) -> bool:
    return _is_int(value) or isinstance(value, (float, np.floating))


def _show(value) -> str:
    """Short description of an attribute value for a message."""
    text = repr(value.tolist() if isinstance(value, np.ndarray) else value)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{text} ({type(value).__name__})"
