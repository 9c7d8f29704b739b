"""Names and layout of the ``vidal-video-v1`` HDF5 format (docs/format.md).

This module owns the format's constants; the writer (:mod:`vidal.data.writer`, used by synth and
the importers), the readers and the validator all import them from here so the contract lives in
one place.
"""

FORMAT_NAME = "vidal-video-v1"

#: Required root attributes.
ROOT_ATTRS = ("format", "classes", "fps", "split", "generator_config", "seed", "command", "created_by")

#: Required per-video datasets: name -> (numpy dtype kind, number of dims).
#: ``frames`` is [T,H,W,3] uint8; the annotation arrays all have length M.
VIDEO_ARRAYS = {
    "frames": ("u1", 4),
    "boxes": ("f4", 2),
    "labels": ("i4", 1),
    "track_ids": ("i4", 1),
    "frame_index": ("i4", 1),
    "visible_fraction": ("f4", 1),
    "truncation": ("f4", 1),
    "occlusion": ("f4", 1),
}

#: Per-box arrays (length M, aligned with ``boxes``).
BOX_ARRAYS = ("boxes", "labels", "track_ids", "frame_index", "visible_fraction", "truncation", "occlusion")

#: Optional dense per-frame arrays: name -> dtype. ``flow`` has T-1 entries.
DENSE_ARRAYS = {"masks": "u2", "depth": "f4", "flow": "f4"}

#: Required per-video attributes.
VIDEO_ATTRS = ("n_frames", "height", "width", "subset", "area", "season", "daytime", "weather", "seed")

VIDEOS_GROUP = "videos"


def video_name_problem(name) -> str | None:
    """Why ``name`` cannot be a video name, or None when it can.

    A video name is a group name and, when frames are exported, a folder name: it must be one safe
    path component (not empty, not ``.`` or ``..``, no ``/`` or ``\\``, no NUL or other control
    characters, at most 255 characters).
    """
    if not isinstance(name, str) or not name:
        return f"{name!r} is empty or not a string"
    if name in (".", ".."):
        return f"{name!r} is a relative path, not a name"
    bad = sorted({c for c in name if c in "/\\" or ord(c) < 32 or ord(c) == 127})
    if bad:
        return f"{name!r} contains {', '.join(repr(c) for c in bad)}"
    if len(name.encode("utf-8", "surrogatepass")) > 255:
        return f"{name[:20]!r}... is longer than 255 bytes"
    return None


#: What a video name may be, for the fix part of error messages.
VIDEO_NAME_RULE = "a single path component: not empty, '.' or '..', without '/', '\\' or control characters"
