"""COCO-VID json <-> ``vidal-video-v1``.

COCO-VID is the video flavour of COCO used by mmtracking / mmdet's video datasets::

    {"categories":  [{"id", "name"}],
     "videos":      [{"id", "name"}],
     "images":      [{"id", "video_id", "frame_id" (0-based), "file_name", "width", "height"}],
     "annotations": [{"id", "image_id", "video_id", "category_id", "instance_id",
                      "bbox": [x, y, w, h], "area", "iscrowd": 0, "occluded"}]}

``file_name`` is relative to an image folder given separately.

Export (``export_coco_vid``) writes ``DIR/<stem>.json`` and, unless ``image_format=None``,
the frames as ``DIR/<stem>/<video>/<frame:06d>.<jpg|png>`` (``file_name`` =
``<video>/<frame:06d>.<ext>``). Ids are 1-based; ``category_id`` is the vidal class id;
``instance_id`` is unique over the file (one per (video, track)). Besides the standard keys
it writes vidal's own, which other tools ignore and the importer uses to round-trip exactly:
``track_id``, ``occlusion``, ``truncation``, ``visible_fraction`` per annotation, ``width``,
``height``, ``attrs`` per video, and an ``info`` block with the root attributes. Boxes are
written as float ``[x1, y1, x2 - x1, y2 - y1]``; float32 corners survive the round trip
exactly (the subtraction and the re-addition are exact in float64).

Import (``import_coco_vid``) reads any COCO-VID json: classes are the category names in id
order (class id = rank + 1); frames are ordered by ``frame_id``; ``iscrowd`` boxes are
skipped; boxes are clipped to the image and skipped when empty; track ids are ``track_id``
where every kept box of a video has one, else the ``instance_id``s of the video's kept boxes
numbered 1..K in increasing order; ``occlusion`` is ``occlusion`` if given, else 0.5 for ``occluded`` true,
else 0. Video names have ``/`` replaced by ``__`` (the original is kept in the
``source_name`` attribute). A malformed file raises ``CocoVidFormatError`` naming the file
and the field, e.g. ``train.json: annotations[3].bbox: expected 4 numbers, got [1, 2]``.
"""

from __future__ import annotations

import json
import math
import os
import shlex
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import cv2
import numpy as np
from tqdm import tqdm

import vidal
from vidal.boxes import xywh_to_xyxy, xyxy_to_xywh
from vidal.data.writer import VideoToWrite, frame_annotations, write_videos
from vidal.data.dataset import DatasetFormatError, VideoDataset
from vidal.data.h5format import FORMAT_NAME, VIDEO_NAME_RULE, video_name_problem

#: Occlusion value stored for ``occluded: true`` when no ``occlusion`` is given.
OCCLUDED_VALUE = 0.5

_IMAGE_FORMATS = {"jpg": ".jpg", "png": ".png"}
_ROOT_INFO_KEYS = ("fps", "split", "generator_config", "seed", "command", "created_by")


class CocoVidFormatError(ValueError):
    """A malformed COCO-VID json file; the message names the file and the field."""


def _jsonable(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, np.ndarray):
        return [_jsonable(v) for v in value.tolist()]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


# ---------------------------------------------------------------------------------------------
# export

def export_coco_vid(h5_path: str | os.PathLike, out_dir: str | os.PathLike, *, image_format: str | None = "jpg",
                    jpeg_quality: int = 95, overwrite: bool = False, progress: bool = True) -> Path:
    """Write ``out_dir/<stem>.json`` (and the frames under ``out_dir/<stem>/``) from a vidal file.

    Args:
        image_format: ``"jpg"``, ``"png"`` (lossless) or None (json only).
    Returns:
        the path of the json file.
    """
    if image_format is not None and image_format not in _IMAGE_FORMATS:
        raise ValueError(f"image_format must be one of {sorted(_IMAGE_FORMATS)} or None, got {image_format!r}")
    from vidal.data.validate import validated

    h5_path, out_dir = Path(h5_path), Path(out_dir)
    json_path = out_dir / f"{h5_path.stem}.json"
    image_dir = out_dir / h5_path.stem
    if json_path.exists() and not overwrite:
        raise FileExistsError(f"{json_path} exists; pass overwrite=True (--overwrite) to replace it")
    ds = VideoDataset(validated(h5_path), with_frames=False)
    out_root = out_dir.resolve()
    for video in ds.videos:     # the validator checked the names; this also guards against symlinks in out_dir
        target = (image_dir / video.name).resolve()
        if video_name_problem(video.name) or out_root not in target.parents:
            ds.close()
            raise DatasetFormatError(f"{h5_path}: videos/{video.name}: would be written to {target}, outside "
                                     f"--out {out_root}; expected {VIDEO_NAME_RULE} (rename the video group) "
                                     f"and no symlink out of --out")
    info = {k: _jsonable(a) for k, a in ds.file_attrs[0].items() if k in _ROOT_INFO_KEYS}
    info.update(source=str(h5_path), source_format=FORMAT_NAME, classes=list(ds.classes))
    doc: dict[str, Any] = {
        "info": info,
        "categories": [{"id": k + 1, "name": c} for k, c in enumerate(ds.classes)],
        "videos": [], "images": [], "annotations": [],
    }
    ext = _IMAGE_FORMATS.get(image_format or "", ".jpg")
    params = [cv2.IMWRITE_JPEG_QUALITY, int(jpeg_quality)] if ext == ".jpg" else []
    instance_of: dict[tuple[int, int], int] = {}
    frames_tmp = out_dir / f".{h5_path.stem}.frames-tmp-{os.getpid()}"
    if image_format is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
    try:
        _export_videos(ds, doc, h5_path, frames_tmp if image_format is not None else None, ext, params,
                       instance_of, progress)
        if image_format is not None:
            old = out_dir / f".{h5_path.stem}.frames-old-{os.getpid()}"
            if image_dir.exists():
                os.replace(image_dir, old)
            os.replace(frames_tmp, image_dir)
            shutil.rmtree(old, ignore_errors=True)
    finally:
        ds.close()
        shutil.rmtree(frames_tmp, ignore_errors=True)
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp = json_path.with_name(f".{json_path.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(doc))
    os.replace(tmp, json_path)
    return json_path


def _export_videos(ds, doc, h5_path, image_dir, ext, params, instance_of, progress) -> None:
    """Fill ``doc`` with the videos, images and annotations of ``ds``; write the frames under
    ``image_dir`` unless it is None."""
    with tqdm(total=len(ds), desc="export", unit="frame", disable=not progress) as bar:
        for v, video in enumerate(ds.videos):
            doc["videos"].append({"id": v + 1, "name": video.name, "width": video.width, "height": video.height,
                                  "n_frames": video.n_frames,
                                  "attrs": {k: _jsonable(a) for k, a in video.attrs.items()}})
            if image_dir is not None:
                (image_dir / video.name).mkdir(parents=True, exist_ok=True)
            for i in video.frames:
                gt = ds.ground_truth(i)
                t = gt["frame_index"]
                image_id = len(doc["images"]) + 1
                file_name = f"{video.name}/{t:06d}{ext}"
                doc["images"].append({"id": image_id, "video_id": v + 1, "frame_id": t, "file_name": file_name,
                                      "width": video.width, "height": video.height})
                if image_dir is not None:
                    try:
                        rgb = ds.image(i)
                    except Exception as exc:    # a corrupt chunk
                        raise DatasetFormatError(f"{h5_path}: videos/{video.name}/frames: frame {t} cannot be "
                                                 f"read ({' '.join(str(exc).split())}); check the file with "
                                                 f"python tools/validate_dataset.py {h5_path} --deep") from None
                    bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
                    if not cv2.imwrite(os.fspath(image_dir / file_name), bgr, params):
                        raise OSError(f"{image_dir / file_name}: could not be written")
                for b, label, tid, occ, trunc, vis in zip(gt["boxes"], gt["labels"], gt["track_ids"],
                                                          gt["occlusion"], gt["truncation"], gt["visible_fraction"]):
                    x1, y1, w, h = (float(c) for c in xyxy_to_xywh(b.astype(np.float64))[0])
                    inst = instance_of.setdefault((v, int(tid)), len(instance_of) + 1)
                    doc["annotations"].append({
                        "id": len(doc["annotations"]) + 1, "image_id": image_id, "video_id": v + 1,
                        "category_id": int(label), "instance_id": inst, "bbox": [x1, y1, w, h], "area": w * h,
                        "iscrowd": 0, "occluded": bool(occ > 0), "track_id": int(tid),
                        "occlusion": float(occ), "truncation": float(trunc), "visible_fraction": float(vis)})
                bar.update(1)


# ---------------------------------------------------------------------------------------------
# import: checking the json

class _Checker:
    """Typed access to json fields with errors naming the file and the field."""

    def __init__(self, path: str):
        self.path = path

    def fail(self, where: str, message: str):
        raise CocoVidFormatError(f"{self.path}: {where}: {message}")

    def get(self, obj: dict, key: str, where: str, kind: str, *, required: bool = True, default=None):
        if key not in obj:
            if required:
                self.fail(f"{where}.{key}", "missing")
            return default
        value = obj[key]
        field = f"{where}.{key}"
        if kind == "int":
            if isinstance(value, bool) or not (isinstance(value, int)
                                               or (isinstance(value, float) and value.is_integer())):
                self.fail(field, f"expected an integer, got {value!r}")
            return int(value)
        if kind == "number":
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                self.fail(field, f"expected a finite number, got {value!r}")
            return float(value)
        if kind == "str":
            if not isinstance(value, str) or not value:
                self.fail(field, f"expected a non-empty string, got {value!r}")
            return value
        if kind == "bbox":
            if (not isinstance(value, list) or len(value) != 4
                    or any(isinstance(c, bool) or not isinstance(c, (int, float)) or not math.isfinite(c)
                           for c in value)):
                self.fail(field, f"expected 4 numbers [x, y, w, h], got {value!r}")
            return [float(c) for c in value]
        raise AssertionError(kind)

    def records(self, doc: dict, key: str) -> list[dict]:
        value = doc.get(key)
        if value is None:
            self.fail(key, "missing (a COCO-VID file has categories, videos, images, annotations)")
        if not isinstance(value, list):
            self.fail(key, f"expected a list, got {type(value).__name__}")
        for i, r in enumerate(value):
            if not isinstance(r, dict):
                self.fail(f"{key}[{i}]", f"expected an object, got {r!r}")
        return value


def _load(path: Path) -> dict:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise CocoVidFormatError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CocoVidFormatError(f"{path}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})") \
            from None
    if not isinstance(doc, dict):
        raise CocoVidFormatError(f"{path}: expected a JSON object at the top level, got {type(doc).__name__}")
    return doc


@dataclass
class _Frame:
    image_id: int
    frame_id: int
    file_name: str
    index: int          # position in images[]


@dataclass
class CocoImportSummary:
    """What ``import_coco_vid`` wrote and skipped."""

    out: Path
    n_videos: int = 0
    n_frames: int = 0
    n_boxes: int = 0
    n_skipped_videos: int = 0   # videos without images
    n_crowd: int = 0            # iscrowd boxes skipped
    n_skipped_boxes: int = 0    # empty after clipping

    def __str__(self) -> str:
        return (f"{self.out}: {self.n_videos} videos, {self.n_frames} frames, {self.n_boxes} boxes "
                f"({self.n_skipped_videos} videos without images, {self.n_crowd} crowd and "
                f"{self.n_skipped_boxes} empty boxes skipped)")


def import_coco_vid(json_path: str | os.PathLike, images_dir: str | os.PathLike, out: str | os.PathLike, *,
                    fps: float | None = None, split: str | None = None, overwrite: bool = False,
                    compression: str = "gzip", progress: bool = True,
                    command: str | None = None) -> CocoImportSummary:
    """Convert a COCO-VID json (+ its image folder) into the ``vidal-video-v1`` file ``out``.

    The whole json is checked before any image is read. See the module docstring for the rules.

    Args:
        fps, split: root attributes (default: the json's ``info``, else 30.0 / ``"imported"``).
    Raises:
        CocoVidFormatError: malformed json or image (names the file and the field).
    """
    json_path, images_dir, out = Path(json_path), Path(images_dir), Path(out)
    chk = _Checker(str(json_path))
    images_root = images_dir.resolve()
    doc = _load(json_path)

    categories = chk.records(doc, "categories")
    names = {}
    for i, c in enumerate(categories):
        cid = chk.get(c, "id", f"categories[{i}]", "int")
        if cid in names:
            chk.fail(f"categories[{i}].id", f"duplicate category id {cid}")
        names[cid] = chk.get(c, "name", f"categories[{i}]", "str")
    if not names:
        chk.fail("categories", "empty; expected at least one category")
    label_of = {cid: k + 1 for k, cid in enumerate(sorted(names))}
    classes = [names[cid] for cid in sorted(names)]

    videos: dict[int, dict] = {}
    group_names = {}
    for i, v in enumerate(chk.records(doc, "videos")):
        vid = chk.get(v, "id", f"videos[{i}]", "int")
        if vid in videos:
            chk.fail(f"videos[{i}].id", f"duplicate video id {vid}")
        name = chk.get(v, "name", f"videos[{i}]", "str")
        parts = name.strip("/").split("/")
        bad = next((p for p in parts if video_name_problem(p)), None)
        if bad is not None:
            chk.fail(f"videos[{i}].name", f"{video_name_problem(bad)} (in {name!r}); rename the video: each "
                                          f"'/'-separated part must be {VIDEO_NAME_RULE}")
        group = "__".join(parts)
        if video_name_problem(group) or group in group_names:
            chk.fail(f"videos[{i}].name", f"{name!r} is not a usable, unique video name (as {group!r}); "
                                          f"rename the video")
        group_names[group] = vid
        attrs = v.get("attrs") if isinstance(v.get("attrs"), dict) else {}
        videos[vid] = {"name": group, "source_name": name, "frames": [], "size": None,
                       "attrs": {k: a for k, a in attrs.items()
                                 if isinstance(a, (str, int, float)) and not isinstance(a, bool)}}

    images: dict[int, tuple[int, _Frame]] = {}
    for i, im in enumerate(chk.records(doc, "images")):
        where = f"images[{i}]"
        iid = chk.get(im, "id", where, "int")
        if iid in images:
            chk.fail(f"{where}.id", f"duplicate image id {iid}")
        vid = chk.get(im, "video_id", where, "int")
        if vid not in videos:
            chk.fail(f"{where}.video_id", f"{vid} is not the id of an entry of videos")
        frame_id = chk.get(im, "frame_id", where, "int")
        if frame_id < 0:
            chk.fail(f"{where}.frame_id", f"expected >= 0, got {frame_id}")
        size = (chk.get(im, "width", where, "int"), chk.get(im, "height", where, "int"))
        if min(size) < 1:
            chk.fail(f"{where}.width", f"expected width, height >= 1, got {size}")
        video = videos[vid]
        if video["size"] is None:
            video["size"] = size
        elif video["size"] != size:
            chk.fail(f"{where}.width", f"{size[0]} x {size[1]} differs from the other frames of video "
                                       f"{video['source_name']!r} ({video['size'][0]} x {video['size'][1]}); "
                                       f"expected one size per video")
        frame = _Frame(iid, frame_id, _confined(chk, images_root, chk.get(im, "file_name", where, "str"),
                                                f"{where}.file_name"), i)
        video["frames"].append(frame)
        images[iid] = (vid, frame)
    for video in videos.values():
        video["frames"].sort(key=lambda fr: fr.frame_id)
        ids = [fr.frame_id for fr in video["frames"]]
        if len(set(ids)) != len(ids):
            dup = next(fr for a, fr in zip(ids, video["frames"][1:]) if fr.frame_id == a)
            chk.fail(f"images[{dup.index}].frame_id", f"frame {dup.frame_id} of video "
                                                      f"{video['source_name']!r} appears twice")

    # annotations, grouped per image
    summary = CocoImportSummary(out)
    per_image: dict[int, list[tuple[int, dict]]] = {}
    for i, a in enumerate(chk.records(doc, "annotations")):
        where = f"annotations[{i}]"
        chk.get(a, "id", where, "int")
        iid = chk.get(a, "image_id", where, "int")
        if iid not in images:
            chk.fail(f"{where}.image_id", f"{iid} is not the id of an entry of images")
        vid = chk.get(a, "video_id", where, "int", required=False)
        if vid is not None and vid != images[iid][0]:
            chk.fail(f"{where}.video_id", f"{vid}, but its image {iid} belongs to video {images[iid][0]}")
        cid = chk.get(a, "category_id", where, "int")
        if cid not in names:
            chk.fail(f"{where}.category_id", f"{cid} is not the id of an entry of categories")
        bbox = chk.get(a, "bbox", where, "bbox")
        inst = chk.get(a, "instance_id", where, "int")
        track = chk.get(a, "track_id", where, "int", required=False)
        if track is not None and track < 1:
            chk.fail(f"{where}.track_id", f"expected >= 1, got {track}")
        if chk.get(a, "iscrowd", where, "int", required=False, default=0):
            summary.n_crowd += 1
            continue
        occ = chk.get(a, "occlusion", where, "number", required=False)
        if occ is None:
            occ = OCCLUDED_VALUE if a.get("occluded") else 0.0
        rec = {"bbox": bbox, "label": label_of[cid], "instance": inst, "track": track, "occlusion": occ,
               "truncation": chk.get(a, "truncation", where, "number", required=False, default=0.0),
               "visible_fraction": chk.get(a, "visible_fraction", where, "number", required=False)}
        for key, lo, hi in (("occlusion", 0, 1), ("truncation", 0, 1)):
            if not lo <= rec[key] < hi:
                chk.fail(f"{where}.{key}", f"expected a value in [0, 1), got {rec[key]}")
        if rec["visible_fraction"] is not None and not 0 < rec["visible_fraction"] <= 1:
            chk.fail(f"{where}.visible_fraction", f"expected a value in (0, 1], got {rec['visible_fraction']}")
        per_image.setdefault(iid, []).append((i, rec))

    to_write = []
    for video in videos.values():
        if not video["frames"]:
            summary.n_skipped_videos += 1
            continue
        item = _video_to_write(chk, video, per_image, images_dir, summary)
        to_write.append(item)
        summary.n_videos += 1
        summary.n_frames += item.n_frames
    info = doc.get("info") if isinstance(doc.get("info"), dict) else {}
    if fps is None:
        fps = info.get("fps", 30.0)
        if isinstance(fps, bool) or not isinstance(fps, (int, float)) or not fps > 0:
            chk.fail("info.fps", f"expected a number > 0, got {fps!r}")
    config = {"importer": "vidal.data.coco_vid", "json": str(json_path), "images": str(images_dir),
              "source_info": {k: info[k] for k in ("source", "generator_config", "seed", "created_by") if k in info}}
    root_attrs = {"classes": classes, "fps": float(fps), "split": split or str(info.get("split", "imported")),
                  "generator_config": json.dumps(config, sort_keys=True), "seed": -1,
                  "command": command if command is not None else shlex.join(sys.argv),
                  "created_by": f"vidal {vidal.__version__} (coco_vid importer)"}
    write_videos(out, to_write, root_attrs, overwrite=overwrite, compression=compression, progress=progress,
                 total_frames=summary.n_frames, desc="frames")
    return summary


def _confined(chk: _Checker, root: Path, file_name: str, field: str) -> str:
    """``file_name`` if it names a file inside the image folder ``root`` (resolved, symlinks
    followed); else a ``CocoVidFormatError`` naming the json, the image entry and the fix."""
    if any(ord(c) < 32 or ord(c) == 127 for c in file_name):
        chk.fail(field, f"{file_name!r} contains control characters; expected a path relative to --images")
    target = (root / file_name).resolve()
    if target != root and root in target.parents:
        return file_name
    chk.fail(field, f"{file_name!r} resolves to {target}, outside --images {root}; expected a path inside "
                    f"the image folder (fix the file_name, or pass the folder that holds the images as --images)")


def _video_to_write(chk: _Checker, video: dict, per_image: dict, images_dir: Path,
                    summary: CocoImportSummary) -> VideoToWrite:
    """Annotations of one video as per-frame arrays, checked; frames are read when written."""
    W, H = video["size"]
    kept = []   # (frame position, annotation index, record, clipped box)
    for k, fr in enumerate(video["frames"]):
        for i, r in per_image.get(fr.image_id, []):
            x1, y1, x2, y2 = (float(c) for c in xywh_to_xyxy(np.asarray(r["bbox"], np.float64))[0])
            box = (max(x1, 0.0), max(y1, 0.0), min(x2, float(W)), min(y2, float(H)))
            if box[2] > box[0] and box[3] > box[1]:
                kept.append((k, i, r, box))
            else:
                summary.n_skipped_boxes += 1
    use_track = bool(kept) and all(r["track"] is not None for _, _, r, _ in kept)
    track_of = {inst: n + 1 for n, inst in enumerate(sorted({r["instance"] for _, _, r, _ in kept}))}
    per_frame: list[list] = [[] for _ in video["frames"]]
    for k, i, r, box in kept:
        per_frame[k].append((i, r, box))
    frames_ann = []
    for fr, items in zip(video["frames"], per_frame):
        seen: dict[int, int] = {}
        for i, r, _ in items:
            tid = r["track"] if use_track else track_of[r["instance"]]
            if tid in seen:
                chk.fail(f"annotations[{i}].instance_id", f"track {tid} already has a box in image "
                                                          f"{fr.image_id} (annotations[{seen[tid]}])")
            seen[tid] = i
        vis = [r["visible_fraction"] for _, r, _ in items]
        frames_ann.append(frame_annotations(
            np.reshape([b for _, _, b in items], (-1, 4)), [r["label"] for _, r, _ in items], list(seen),
            occlusion=[r["occlusion"] for _, r, _ in items], truncation=[r["truncation"] for _, r, _ in items],
            visible_fraction=None if any(v is None for v in vis) else vis))
        summary.n_boxes += len(items)

    def frames() -> Iterator[tuple[np.ndarray, dict[str, np.ndarray]]]:
        for fr, ann in zip(video["frames"], frames_ann):
            path = images_dir / fr.file_name
            bgr = cv2.imread(os.fspath(path), cv2.IMREAD_COLOR)
            if bgr is None:
                raise CocoVidFormatError(f"{path}: cannot be read as an image "
                                         f"({chk.path}: images[{fr.index}].file_name)")
            if bgr.shape[:2] != (H, W):
                raise CocoVidFormatError(f"{path}: image is {bgr.shape[1]} x {bgr.shape[0]} but "
                                         f"{chk.path}: images[{fr.index}] says {W} x {H}")
            yield cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), ann

    attrs = {**video["attrs"], "source_name": video["source_name"]}
    for key in ("n_frames", "height", "width"):
        attrs.pop(key, None)
    return VideoToWrite(name=video["name"], n_frames=len(video["frames"]), height=H, width=W, frames=frames,
                        attrs=attrs)
