"""Import ImageNet-VID (ILSVRC2015 VID) into the ``vidal-video-v1`` format.

Source layout (the official archive)::

    ROOT/Data/VID/<split>/<video dir...>/000000.JPEG
    ROOT/Annotations/VID/<split>/<video dir...>/000000.xml

A video is a folder of JPEG frames (at any depth under ``Data/VID/<split>``; frames in name
order); every frame has a PASCAL-VOC-like XML file (``<size>`` and one ``<object>`` per box
with ``<trackid>``, ``<name>`` = WordNet id, ``<bndbox>``, ``<occluded>``, ``<generated>``).

Conversion rules (the choices are ours; all are recorded in the file's ``generator_config``):

- **Classes.** ``WNID_TO_NAME`` maps the 30 VID WordNet ids to the usual names (mmtracking /
  ILSVRC devkit order). A subset is kept (default ``car`` n02958343, ``bicycle`` n02834778,
  ``motorcycle`` n03790512); class id ``k`` is the k-th class of the subset (1-based).
  Objects of other classes are dropped.
- **Videos.** By default only videos with at least one (valid) box of a kept class are
  imported (``only_videos_with_classes=False`` keeps all).
- **Boxes.** ``<bndbox>`` is read as pixel-edge coordinates (``x1=xmin, x2=xmax``, as the
  mmtracking converter does), clipped to the image; a box with ``xmax <= xmin`` or
  ``ymax <= ymin`` after clipping is skipped (counted in the summary). ``truncation`` is the
  fraction of the box area cut by the clipping, ``occlusion`` is 0.5 where ``<occluded>`` is 1
  (the flag says only "partly occluded") and 0 otherwise, ``visible_fraction =
  (1 - truncation)(1 - occlusion)``. ``<generated>`` boxes (interpolated by the annotators'
  tool) are official ground truth and are kept.
- **Track ids** are ``<trackid> + 1`` (ILSVRC track ids start at 0; vidal's at 1).
- **Incomplete frames** (``drop_incomplete=True``, the default). Frame t is *incomplete* when
  an object of a kept class is annotated in some frame before t and in some frame after t,
  at most ``max_gap + 1`` frames apart, but not in t: a one-frame (``max_gap`` frames) hole in
  a track is an annotation miss, not the object leaving the view (ILSVRC annotates partly
  occluded and truncated objects). Presence counts every ``<object>`` of a kept class, even
  one whose box is skipped as degenerate. Incomplete frames are dropped; to keep every video
  temporally contiguous (flow, tracking), a video with dropped frames is split at them into
  segments named ``<video>_f<first source frame:06d>``. Every video records ``source_dir``
  and ``source_first_frame`` attributes.
- **Video names** are the video folder names (``ILSVRC2015_train_00000000``), or the relative
  path with ``/`` replaced by ``__`` where folder names repeat.
- Per-video ``subset/area/season/daytime/weather`` are ``"unknown"``, seeds -1, ``fps`` is a
  nominal 30 (ILSVRC does not give per-video rates).

Errors in the annotations raise ``AnnotationError`` naming the file (relative to ROOT) and the
field, e.g. ``Annotations/VID/train/a/000003.xml: <object>[1]/<bndbox>/<xmax>: not a number
('abc')`` (``<object>[i]`` counts from 0).
"""

from __future__ import annotations

import json
import os
import shlex
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Sequence

import cv2
import numpy as np
from tqdm import tqdm

import vidal
from vidal.data.writer import VideoToWrite, frame_annotations, write_videos

#: The 30 ImageNet-VID classes: WordNet id -> name.
WNID_TO_NAME = {
    "n02691156": "airplane", "n02419796": "antelope", "n02131653": "bear", "n02834778": "bicycle",
    "n01503061": "bird", "n02924116": "bus", "n02958343": "car", "n02402425": "cattle",
    "n02084071": "dog", "n02121808": "domestic_cat", "n02503517": "elephant", "n02118333": "fox",
    "n02510455": "giant_panda", "n02342885": "hamster", "n02374451": "horse", "n02129165": "lion",
    "n01674464": "lizard", "n02484322": "monkey", "n03790512": "motorcycle", "n02324045": "rabbit",
    "n02509815": "red_panda", "n02411705": "sheep", "n01726692": "snake", "n02355227": "squirrel",
    "n02129604": "tiger", "n04468005": "train", "n01662784": "turtle", "n04530566": "watercraft",
    "n02062744": "whale", "n02391049": "zebra",
}
NAME_TO_WNID = {name: wnid for wnid, name in WNID_TO_NAME.items()}

#: Default class subset (driving scenes).
DEFAULT_CLASSES = ("car", "bicycle", "motorcycle")

#: Occlusion value stored for a box whose ``<occluded>`` flag is 1.
OCCLUDED_VALUE = 0.5

_IMAGE_SUFFIXES = (".jpeg", ".jpg")


class AnnotationError(ValueError):
    """A malformed annotation or image; the message names the file and the field."""


@dataclass
class _Object:
    track: int          # source <trackid> (>= 0)
    wnid: str
    box: tuple[float, float, float, float]   # xmin, ymin, xmax, ymax as written
    occluded: bool


@dataclass
class ImportSummary:
    """What an import wrote and skipped."""

    out: Path
    n_videos: int = 0           # videos written (segments count separately)
    n_frames: int = 0
    n_boxes: int = 0
    n_source_videos: int = 0    # videos found under Data/VID/<split>
    n_skipped_videos: int = 0   # without any box of a kept class
    n_dropped_frames: int = 0   # incomplete frames dropped
    n_skipped_boxes: int = 0    # degenerate after clipping

    def __str__(self) -> str:
        return (f"{self.out}: {self.n_videos} videos, {self.n_frames} frames, {self.n_boxes} boxes "
                f"({self.n_source_videos} source videos, {self.n_skipped_videos} without kept classes skipped, "
                f"{self.n_dropped_frames} incomplete frames dropped, {self.n_skipped_boxes} degenerate boxes skipped)")


def resolve_classes(classes: Sequence[str]) -> list[str]:
    """WordNet ids of ``classes`` (names like ``car`` or wnids like ``n02958343``), in order."""
    wnids = []
    for c in classes:
        c = c.strip()
        if c in NAME_TO_WNID:
            wnids.append(NAME_TO_WNID[c])
        elif c in WNID_TO_NAME:
            wnids.append(c)
        else:
            raise ValueError(f"unknown ImageNet-VID class {c!r}; expected one of {sorted(NAME_TO_WNID)} "
                             f"or their WordNet ids")
    if not wnids or len(set(wnids)) != len(wnids):
        raise ValueError(f"classes must be a non-empty list without repeats, got {list(classes)}")
    return wnids


# ---------------------------------------------------------------------------------------------
# XML

def _text(el: ET.Element, path: str, where: str, file: str) -> str:
    child = el.find(path.replace("<", "").replace(">", ""))
    field = f"{where}/{path}" if where else path
    if child is None or child.text is None or not child.text.strip():
        raise AnnotationError(f"{file}: {field}: missing")
    return child.text.strip()


def _number(el, path, where, file, *, integer=False) -> float:
    text = _text(el, path, where, file)
    field = f"{where}/{path}" if where else path
    try:
        value = float(text)
    except ValueError:
        raise AnnotationError(f"{file}: {field}: not a number ({text!r})") from None
    if not np.isfinite(value):
        raise AnnotationError(f"{file}: {field}: not a finite number ({text!r})")
    if integer and value != int(value):
        raise AnnotationError(f"{file}: {field}: not an integer ({text!r})")
    return value


def _flag(el, path, where, file) -> bool:
    if el.find(path.replace("<", "").replace(">", "")) is None:
        return False
    value = _number(el, path, where, file, integer=True)
    if value not in (0, 1):
        raise AnnotationError(f"{file}: {where}/{path}: expected 0 or 1, got {int(value)}")
    return bool(value)


def parse_annotation(path: str | os.PathLike, shown: str | None = None) -> tuple[int, int, list[_Object]]:
    """Parse one ILSVRC VID XML file: ``(width, height, objects)``.

    Args:
        shown: the file name used in error messages (default: ``path``).
    Raises:
        AnnotationError: naming the file and the field.
    """
    shown = shown or os.fspath(path)
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as exc:
        raise AnnotationError(f"{shown}: not well-formed XML ({exc})") from None
    except OSError as exc:
        raise AnnotationError(f"{shown}: cannot be read ({exc.strerror or exc})") from None
    width = _number(root, "<size>/<width>", "", shown, integer=True)
    height = _number(root, "<size>/<height>", "", shown, integer=True)
    if width < 1 or height < 1:
        raise AnnotationError(f"{shown}: <size>: expected width, height >= 1, got {width:g} x {height:g}")
    objects, seen = [], set()
    for i, obj in enumerate(root.findall("object")):
        where = f"<object>[{i}]"
        track = int(_number(obj, "<trackid>", where, shown, integer=True))
        if track < 0:
            raise AnnotationError(f"{shown}: {where}/<trackid>: expected >= 0, got {track}")
        if track in seen:
            raise AnnotationError(f"{shown}: {where}/<trackid>: track {track} appears twice in this frame")
        seen.add(track)
        wnid = _text(obj, "<name>", where, shown)
        box = tuple(_number(obj, f"<bndbox>/<{k}>", where, shown) for k in ("xmin", "ymin", "xmax", "ymax"))
        occluded = _flag(obj, "<occluded>", where, shown)
        _flag(obj, "<generated>", where, shown)   # validated; generated boxes are kept
        objects.append(_Object(track, wnid, box, occluded))
    return int(width), int(height), objects


# ---------------------------------------------------------------------------------------------
# scanning

@dataclass
class _Video:
    rel: str                       # folder relative to Data/VID/<split>, posix
    images: list[Path]
    width: int
    height: int
    ann: dict[str, np.ndarray] = field(default_factory=dict)   # per-box arrays of all frames
    frame_index: np.ndarray | None = None                        # int [M], sorted
    incomplete: np.ndarray | None = None                         # bool [T]
    n_skipped_boxes: int = 0

    def n_boxes(self, start: int = 0, end: int | None = None) -> int:
        """Boxes in frames ``start..end-1``."""
        lo, hi = np.searchsorted(self.frame_index, [start, len(self.images) if end is None else end])
        return int(hi - lo)

    def frame(self, t: int) -> dict[str, np.ndarray]:
        """Per-box arrays of frame ``t``."""
        lo, hi = np.searchsorted(self.frame_index, [t, t + 1])
        return {k: v[lo:hi] for k, v in self.ann.items()}


def find_videos(root: str | os.PathLike, split: str) -> list[tuple[str, list[Path]]]:
    """``(relative folder, sorted frame paths)`` of every video under ``ROOT/Data/VID/<split>``."""
    data = Path(root) / "Data" / "VID" / split
    if not data.is_dir():
        raise FileNotFoundError(f"{data}: no such folder (expected ROOT/Data/VID/{split}/<videos>/*.JPEG)")
    videos = []
    for dirpath, dirnames, filenames in os.walk(data):
        dirnames.sort()
        images = sorted(f for f in filenames if f.lower().endswith(_IMAGE_SUFFIXES))
        if images:
            rel = Path(dirpath).relative_to(data).as_posix()
            videos.append((rel, [Path(dirpath) / f for f in images]))
    return videos


def _scan(root: Path, split: str, rel: str, images: list[Path], wnids: list[str],
          max_gap: int) -> _Video:
    """Parse the annotations of one video (no image is decoded)."""
    label_of = {w: k + 1 for k, w in enumerate(wnids)}
    sizes, per_frame = set(), []
    for image in images:
        shown = f"Annotations/VID/{split}/{rel}/{image.stem}.xml"
        xml = root / shown
        if not xml.is_file():
            raise AnnotationError(f"{shown}: missing (the annotation of {image.relative_to(root).as_posix()})")
        w, h, objects = parse_annotation(xml, shown)
        sizes.add((w, h))
        if len(sizes) > 1:
            raise AnnotationError(f"{shown}: <size>: {w} x {h} differs from the earlier frames of the video "
                                  f"({sorted(sizes - {(w, h)})[0]}); expected one size per video")
        per_frame.append(objects)
    (W, H), = sizes
    video = _Video(rel, images, W, H)
    present: dict[int, list[int]] = {}
    boxes, labels, tids, occ, trunc, fidx = [], [], [], [], [], []
    for t, objects in enumerate(per_frame):
        for o in objects:
            if o.wnid not in label_of:
                continue
            present.setdefault(o.track, []).append(t)
            x1, y1, x2, y2 = o.box
            cx1, cy1, cx2, cy2 = max(x1, 0.0), max(y1, 0.0), min(x2, float(W)), min(y2, float(H))
            if not (cx2 > cx1 and cy2 > cy1) or not (x2 > x1 and y2 > y1):
                video.n_skipped_boxes += 1
                continue
            boxes.append((cx1, cy1, cx2, cy2))
            labels.append(label_of[o.wnid])
            tids.append(o.track + 1)
            occ.append(OCCLUDED_VALUE if o.occluded else 0.0)
            trunc.append(min(max(1.0 - (cx2 - cx1) * (cy2 - cy1) / ((x2 - x1) * (y2 - y1)), 0.0), 0.999))
            fidx.append(t)
    video.ann = frame_annotations(np.reshape(boxes, (-1, 4)), labels, tids, occlusion=occ, truncation=trunc)
    video.frame_index = np.asarray(fidx, np.int64)
    video.incomplete = incomplete_frames(present, len(images), max_gap)
    return video


def incomplete_frames(present: dict[int, list[int]], n_frames: int, max_gap: int = 1) -> np.ndarray:
    """Frames with a hole of at most ``max_gap`` frames in some track: bool [n_frames].

    Args:
        present: track -> sorted frames where the track is annotated.
    """
    bad = np.zeros(n_frames, bool)
    for frames in present.values():
        f = np.asarray(frames)
        for a, b in zip(f[:-1], f[1:]):
            if 1 < b - a <= max_gap + 1:
                bad[a + 1:b] = True
    return bad


def _segments(incomplete: np.ndarray) -> list[tuple[int, int]]:
    """``[start, end)`` runs of complete frames."""
    runs, start = [], None
    for t, bad in enumerate(list(incomplete) + [True]):
        if not bad and start is None:
            start = t
        elif bad and start is not None:
            runs.append((start, t))
            start = None
    return runs


def _read_rgb(path: Path, width: int, height: int, shown: str) -> np.ndarray:
    bgr = cv2.imread(os.fspath(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise AnnotationError(f"{shown}: cannot be decoded as an image")
    if bgr.shape[:2] != (height, width):
        raise AnnotationError(f"{shown}: image is {bgr.shape[1]} x {bgr.shape[0]} but its annotation "
                              f"<size> says {width} x {height}")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


# ---------------------------------------------------------------------------------------------
# import

def import_imagenet_vid(root: str | os.PathLike, split: str, out: str | os.PathLike, *,
                        classes: Sequence[str] = DEFAULT_CLASSES, only_videos_with_classes: bool = True,
                        drop_incomplete: bool = True, max_gap: int = 1, fps: float = 30.0,
                        overwrite: bool = False, compression: str = "gzip", progress: bool = True,
                        command: str | None = None) -> ImportSummary:
    """Convert ``ROOT/{Data,Annotations}/VID/<split>`` into the ``vidal-video-v1`` file ``out``.

    All annotations are parsed (and checked) before anything is written; frames are then
    decoded one at a time. See the module docstring for the conversion rules.

    Args:
        classes: names or WordNet ids of the classes to keep, in class-id order.
        only_videos_with_classes: skip videos without any box of a kept class.
        drop_incomplete: drop incomplete frames (splitting videos at them).
        max_gap: longest track hole (frames) that marks frames incomplete.
    Returns:
        an ``ImportSummary``.
    Raises:
        AnnotationError: malformed XML or image (names the file and field).
        FileNotFoundError: no ``ROOT/Data/VID/<split>``.
    """
    if max_gap < 1:
        raise ValueError(f"max_gap must be >= 1, got {max_gap}")
    root, out = Path(root), Path(out)
    wnids = resolve_classes(classes)
    found = find_videos(root, split)
    if not found:
        raise FileNotFoundError(f"{root / 'Data/VID' / split}: no video folders with JPEG frames")
    leaves = [Path(rel).name for rel, _ in found]
    unique = len(set(leaves)) == len(leaves)
    summary = ImportSummary(out, n_source_videos=len(found))
    to_write: list[VideoToWrite] = []
    for (rel, images), leaf in tqdm(list(zip(found, leaves)), desc="annotations", unit="video",
                                    disable=not progress):
        video = _scan(root, split, rel, images, wnids, max_gap)
        summary.n_skipped_boxes += video.n_skipped_boxes
        if only_videos_with_classes and video.n_boxes() == 0:
            summary.n_skipped_videos += 1
            continue
        name = leaf if unique else rel.replace("/", "__")
        incomplete = video.incomplete if drop_incomplete else np.zeros(len(images), bool)
        summary.n_dropped_frames += int(incomplete.sum())
        runs = _segments(incomplete)
        for start, end in runs:
            seg_name = name if len(runs) == 1 and (start, end) == (0, len(images)) else f"{name}_f{start:06d}"
            to_write.append(_segment(video, root, seg_name, start, end))
            summary.n_videos += 1
            summary.n_frames += end - start
            summary.n_boxes += video.n_boxes(start, end)
    config = {"importer": "vidal.data.imagenet_vid", "root": str(root), "split": split,
              "classes": [WNID_TO_NAME[w] for w in wnids], "wnids": wnids,
              "only_videos_with_classes": only_videos_with_classes, "drop_incomplete": drop_incomplete,
              "max_gap": max_gap, "occluded_value": OCCLUDED_VALUE}
    root_attrs = {"classes": [WNID_TO_NAME[w] for w in wnids], "fps": float(fps), "split": split,
                  "generator_config": json.dumps(config, sort_keys=True), "seed": -1,
                  "command": command if command is not None else shlex.join(sys.argv),
                  "created_by": f"vidal {vidal.__version__} (imagenet_vid importer)"}
    write_videos(out, to_write, root_attrs, overwrite=overwrite, compression=compression,
                 progress=progress, total_frames=summary.n_frames, desc="frames")
    return summary


def _segment(video: _Video, root: Path, name: str, start: int, end: int) -> VideoToWrite:
    def frames() -> Iterator[tuple[np.ndarray, dict[str, np.ndarray]]]:
        for t in range(start, end):
            image = video.images[t]
            yield _read_rgb(image, video.width, video.height, image.relative_to(root).as_posix()), video.frame(t)

    return VideoToWrite(name=name, n_frames=end - start, height=video.height, width=video.width, frames=frames,
                        attrs={"source_dir": video.rel, "source_first_frame": start,
                               "source_dataset": "ILSVRC2015-VID"})
