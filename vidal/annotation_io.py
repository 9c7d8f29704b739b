"""Annotation jobs to labelling tools and back (issue 16): Label Studio, CVAT, COCO.

Export (:func:`export_job`) writes into ``OUT``::

    images/<video>/<frame:06d>.png     the job's frames, as stored in the pool file (RGB, lossless)
    context/<video>/<frame:06d>.png    with ``context=N``: the N frames before and after each one
    label-studio:  tasks.json (one task per frame: ``data.image``, ``data.video``, ``data.frame``,
                   ``data.index``; the model's detections as ``predictions``) and label_config.xml
    cvat:          annotations.xml (CVAT for images 1.1; the detections as ``<box source="auto">``)
    coco:          annotations.json (``images`` with ``vidal_video`` / ``vidal_frame``, the detections
                   as ``annotations`` with ``score``)

Each task carries its video name and frame index, so import matches it to the job exactly. Import
(:func:`read_labels`) reads the tool's export into pixel boxes ``x1, y1, x2, y2`` of the stored frame:

- Label Studio JSON export: ``rectanglelabels`` results in percent of ``original_width`` /
  ``original_height`` (``x1 = x / 100 * W``, ``x2 = (x + width) / 100 * W``); the task's latest
  annotation that is not ``was_cancelled`` counts; a task without one stays pending.
- CVAT for images 1.1 XML: ``<image name="<video>/<frame>.png">`` with ``<box xtl ytl xbr ybr
  label>``; every ``<image>`` in the file is labeled (possibly with no box), images left out stay
  pending.
- COCO json: ``bbox = [x, y, w, h]`` in pixels; every image in ``images`` is labeled.

Class names are mapped by name to the pool's class ids. An unknown class, a frame that is not in
the job, a box outside the image (more than :data:`TOLERANCE_PX` beyond it; within, clipped) or an
empty box is a one-line :class:`vidal.human.LabelError` naming the file and the task.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import numpy as np

from vidal.human import LabelError

FORMATS = ("label-studio", "cvat", "coco")
#: A box may reach this far outside the image (the percent round trip of Label Studio); it is clipped.
TOLERANCE_PX = 0.05
FROM_NAME, TO_NAME = "label", "image"


def image_name(video: str, frame: int) -> str:
    return f"{video}/{frame:06d}.png"


def parse_image_name(name: str) -> tuple[str, int] | None:
    """``(video, frame)`` of ``.../<video>/<frame>.<ext>`` (None when it is not such a name)."""
    parts = str(name).replace("\\", "/").split("/")
    if len(parts) < 2:
        return None
    stem = parts[-1].rsplit(".", 1)[0]
    return (parts[-2], int(stem)) if stem.isdigit() else None


# ----------------------------------------------------------------------------- export


def label_config(classes) -> str:
    """The Label Studio labelling config: one image, rectangle labels named after the classes."""
    from xml.sax.saxutils import quoteattr

    labels = "\n".join(f"    <Label value={quoteattr(c)}/>" for c in classes)
    return (f'<View>\n  <Image name="{TO_NAME}" value="$image"/>\n'
            f'  <RectangleLabels name="{FROM_NAME}" toName="{TO_NAME}">\n{labels}\n  </RectangleLabels>\n</View>\n')


def _ls_result(box, label: str, W: int, H: int, k: int, score: float | None) -> dict:
    x1, y1, x2, y2 = (float(v) for v in box)
    r = {"id": f"r{k}", "type": "rectanglelabels", "from_name": FROM_NAME, "to_name": TO_NAME,
         "original_width": W, "original_height": H, "image_rotation": 0,
         "value": {"x": 100.0 * x1 / W, "y": 100.0 * y1 / H, "width": 100.0 * (x2 - x1) / W,
                   "height": 100.0 * (y2 - y1) / H, "rotation": 0, "rectanglelabels": [label]}}
    if score is not None:
        r["score"] = float(score)
    return r


def _kept(p: dict | None, min_score: float) -> dict:
    """The detections of a job frame scored ``>= min_score`` (the pre-annotations shown to annotators)."""
    p = p or {"boxes": [], "labels": [], "scores": []}
    keep = [k for k, s in enumerate(p["scores"]) if s >= min_score]
    return {"boxes": [p["boxes"][k] for k in keep], "labels": [p["labels"][k] for k in keep],
            "scores": [p["scores"][k] for k in keep]}


def _label_studio_tasks(job: dict, url_prefix: str, min_score: float) -> list[dict]:
    classes = job["classes"]
    tasks = []
    for e in job["frames"]:
        name = image_name(e["video"], e["frame"])
        task = {"data": {"image": url_prefix + "images/" + name, "video": e["video"], "frame": e["frame"],
                         "index": e["index"], "job": job["number"]}}
        if e.get("prediction") is not None:
            p = _kept(e["prediction"], min_score)
            res = [_ls_result(b, classes[lab - 1], e["width"], e["height"], k, s)
                   for k, (b, lab, s) in enumerate(zip(p["boxes"], p["labels"], p["scores"]))]
            task["predictions"] = [{"model_version": job["made_by"], "score": float(np.mean(p["scores"]))
                                    if p["scores"] else 0.0, "result": res}]
        tasks.append(task)
    return tasks


def _cvat_xml(job: dict, min_score: float) -> str:
    root = ET.Element("annotations")
    ET.SubElement(root, "version").text = "1.1"
    meta = ET.SubElement(ET.SubElement(root, "meta"), "task")
    ET.SubElement(meta, "name").text = f"vidal job {job['number']}"
    labels = ET.SubElement(meta, "labels")
    for c in job["classes"]:
        lab = ET.SubElement(labels, "label")
        ET.SubElement(lab, "name").text = c
        ET.SubElement(lab, "type").text = "rectangle"
    for k, e in enumerate(job["frames"]):
        im = ET.SubElement(root, "image", id=str(k), name=image_name(e["video"], e["frame"]),
                           width=str(e["width"]), height=str(e["height"]))
        p = _kept(e.get("prediction"), min_score)
        for b, lab, s in zip(p["boxes"], p["labels"], p["scores"]):
            box = ET.SubElement(im, "box", label=job["classes"][lab - 1], source="auto", occluded="0",
                                xtl=repr(float(b[0])), ytl=repr(float(b[1])), xbr=repr(float(b[2])),
                                ybr=repr(float(b[3])), z_order="0")
            ET.SubElement(box, "attribute", name="score").text = repr(float(s))
    ET.indent(root)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def _coco(job: dict, min_score: float) -> dict:
    images, anns = [], []
    for k, e in enumerate(job["frames"]):
        images.append({"id": k + 1, "file_name": image_name(e["video"], e["frame"]), "width": e["width"],
                       "height": e["height"], "vidal_video": e["video"], "vidal_frame": e["frame"],
                       "vidal_index": e["index"]})
        p = _kept(e.get("prediction"), min_score)
        for b, lab, s in zip(p["boxes"], p["labels"], p["scores"]):
            x1, y1, x2, y2 = (float(v) for v in b)
            anns.append({"id": len(anns) + 1, "image_id": k + 1, "category_id": int(lab),
                         "bbox": [x1, y1, x2 - x1, y2 - y1], "area": (x2 - x1) * (y2 - y1), "iscrowd": 0,
                         "score": float(s)})
    return {"info": {"description": f"vidal annotation job {job['number']}", "vidal_job": job["number"]},
            "images": images, "annotations": anns,
            "categories": [{"id": k + 1, "name": c} for k, c in enumerate(job["classes"])]}


def _write_png(path: Path, rgb: np.ndarray) -> None:
    import cv2

    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), np.ascontiguousarray(rgb[:, :, ::-1])):
        raise OSError(f"{path}: could not be written")


def export_job(job: dict, dataset, fmt: str, out: str | os.PathLike, *, context: int = 0,
               url_prefix: str = "/data/local-files/?d=", min_score: float = 0.5, progress: bool = True) -> dict:
    """Write ``job`` for the labelling tool ``fmt`` into the folder ``out`` (created; it must not
    exist or be empty); ``min_score``: the detections scored below it are left out of the
    pre-annotations (0.5: the thesis evaluation threshold). Everything is written into a hidden
    sibling folder first, then renamed, so an interrupted export leaves no half folder.
    Returns ``{"out", "task_file", "images", "context"}``."""
    from tqdm import tqdm

    if fmt not in FORMATS:
        raise ValueError(f"--format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise FileExistsError(f"{out}: exists and is not an empty folder; choose another --out")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.tmp-{os.getpid()}-"))
    try:
        n_context = 0
        for e in tqdm(job["frames"], desc="export frames", unit="frame", disable=not progress):
            _write_png(tmp / "images" / image_name(e["video"], e["frame"]), dataset.image(int(e["index"])))
            v, t = dataset.locate(int(e["index"]))
            for dt in range(-context, context + 1):
                if dt == 0 or not 0 <= t + dt < dataset.videos[v].n_frames:
                    continue
                target = tmp / "context" / image_name(e["video"], t + dt)
                if not target.exists():
                    _write_png(target, dataset.image(dataset.index_of(v, t + dt)))
                    n_context += 1
        if fmt == "label-studio":
            task_file = tmp / "tasks.json"
            task_file.write_text(json.dumps(_label_studio_tasks(job, url_prefix, min_score), indent=1) + "\n")
            (tmp / "label_config.xml").write_text(label_config(job["classes"]))
        elif fmt == "cvat":
            task_file = tmp / "annotations.xml"
            task_file.write_text(_cvat_xml(job, min_score))
        else:
            task_file = tmp / "annotations.json"
            task_file.write_text(json.dumps(_coco(job, min_score), indent=1) + "\n")
        if out.exists():
            out.rmdir()
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return {"out": str(out), "task_file": str(out / task_file.name), "images": len(job["frames"]),
            "context": n_context}


# ----------------------------------------------------------------------------- import


class _Reader:
    """Collects ``{(video, frame): (boxes [[x1,y1,x2,y2]], class names, task name)}`` from one file."""

    def __init__(self, path: Path, job: dict):
        self.path, self.job = path, job
        self.by_key = {(e["video"], int(e["frame"])): e for e in job["frames"]}
        self.classes = list(job["classes"])
        self.out: dict[int, dict] = {}

    def error(self, task: str, message: str) -> LabelError:
        return LabelError(f"{self.path}: {task}: {message}")

    def frame(self, task: str, video: Any, frame: Any, index: Any = None) -> dict:
        try:
            key = (str(video), int(frame))
        except (TypeError, ValueError):
            raise self.error(task, f"video {video!r} / frame {frame!r} do not name a frame; export the tasks with "
                                   f"tools/export_selection.py, which records them") from None
        e = self.by_key.get(key)
        if e is None:
            raise self.error(task, f"frame {key[1]} of video {key[0]!r} is not in annotation job {self.job['number']} "
                                   f"({len(self.job['frames'])} frames); import the export of this job's tasks")
        if index is not None and int(index) != int(e["index"]):
            raise self.error(task, f"index {index} differs from the job's {e['index']} for this frame; the tasks "
                                   f"come from another run")
        return e

    def add(self, task: str, e: dict, boxes: list, names: list) -> None:
        W, H = float(e["width"]), float(e["height"])
        out_boxes, labels = [], []
        for (x1, y1, x2, y2), name in zip(boxes, names):
            if name not in self.classes:
                raise self.error(task, f"class {name!r} is not one of the run's classes {', '.join(self.classes)}; "
                                       f"rename the label in the tool")
            if not all(np.isfinite([x1, y1, x2, y2])):
                raise self.error(task, f"box {[x1, y1, x2, y2]} is not finite")
            t = TOLERANCE_PX
            if x1 < -t or y1 < -t or x2 > W + t or y2 > H + t:
                raise self.error(task, f"box x1={x1:.2f} y1={y1:.2f} x2={x2:.2f} y2={y2:.2f} is outside the "
                                       f"{int(W)}x{int(H)} image; fix it in the tool")
            x1, x2 = min(max(x1, 0.0), W), min(max(x2, 0.0), W)
            y1, y2 = min(max(y1, 0.0), H), min(max(y2, 0.0), H)
            if not (x2 > x1 and y2 > y1):
                raise self.error(task, f"box x1={x1:.2f} y1={y1:.2f} x2={x2:.2f} y2={y2:.2f} is empty; delete it "
                                       f"in the tool")
            out_boxes.append([x1, y1, x2, y2])
            labels.append(self.classes.index(name) + 1)
        i = int(e["index"])
        if i in self.out:
            raise self.error(task, f"frame {e['frame']} of video {e['video']!r} appears twice in the file")
        self.out[i] = {"boxes": out_boxes, "labels": labels, "task": task}


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise LabelError(f"{path}: not a readable JSON file ({type(e).__name__}: {e})") from None


def _read_label_studio(r: _Reader) -> None:
    tasks = _read_json(r.path)
    if isinstance(tasks, dict):
        tasks = [tasks]
    if not isinstance(tasks, list):
        raise LabelError(f"{r.path}: expected Label Studio's JSON export (a list of tasks)")
    for n, task in enumerate(tasks):
        name = f"task {task.get('id', n) if isinstance(task, dict) else n}"
        if not isinstance(task, dict) or not isinstance(task.get("data"), dict):
            raise r.error(name, "has no 'data'; expected Label Studio's JSON export (Export > JSON)")
        d = task["data"]
        e = r.frame(name, d.get("video"), d.get("frame"), d.get("index"))
        done = [a for a in task.get("annotations") or [] if isinstance(a, dict) and not a.get("was_cancelled")]
        if not done:
            continue  # skipped or not labeled yet: stays pending
        ann = max(done, key=lambda a: (str(a.get("updated_at") or a.get("created_at") or ""), a.get("id") or 0))
        boxes, names = [], []
        for res in ann.get("result") or []:
            if res.get("type") != "rectanglelabels":
                continue
            v = res.get("value") or {}
            W = float(res.get("original_width") or e["width"])
            H = float(res.get("original_height") or e["height"])
            if abs(W - e["width"]) > 0.5 or abs(H - e["height"]) > 0.5:
                raise r.error(name, f"the image was annotated at {W:g}x{H:g}, the frame is {e['width']}x{e['height']}")
            if float(v.get("rotation") or 0.0) != 0.0:
                raise r.error(name, f"box {res.get('id')} is rotated ({v['rotation']} degrees); vidal boxes are "
                                    f"axis-aligned, undo the rotation")
            lab = v.get("rectanglelabels") or []
            if len(lab) != 1:
                raise r.error(name, f"box {res.get('id')} has {len(lab)} labels {lab}; give it exactly one class")
            try:
                x, y, w, h = (float(v[k]) for k in ("x", "y", "width", "height"))
            except (KeyError, TypeError, ValueError):
                raise r.error(name, f"box {res.get('id')} lacks x / y / width / height") from None
            boxes.append([x / 100.0 * W, y / 100.0 * H, (x + w) / 100.0 * W, (y + h) / 100.0 * H])
            names.append(lab[0])
        r.add(name, e, boxes, names)


def _read_cvat(r: _Reader) -> None:
    try:
        root = ET.parse(r.path).getroot()
    except (OSError, ET.ParseError) as e:
        raise LabelError(f"{r.path}: not a readable XML file ({e}); expected CVAT for images 1.1") from None
    if root.tag != "annotations":
        raise LabelError(f"{r.path}: root element <{root.tag}>, expected <annotations> (CVAT for images 1.1)")
    for im in root.iter("image"):
        name = f"image {im.get('id')} ({im.get('name')})"
        key = parse_image_name(im.get("name") or "")
        if key is None:
            raise r.error(name, "its name is not <video>/<frame>.png as exported by tools/export_selection.py")
        e = r.frame(name, *key)
        boxes, names = [], []
        for b in im.iter("box"):
            try:
                boxes.append([float(b.get(k)) for k in ("xtl", "ytl", "xbr", "ybr")])
            except (TypeError, ValueError):
                raise r.error(name, "a <box> lacks xtl / ytl / xbr / ybr") from None
            if float(b.get("rotation") or 0.0) != 0.0:
                raise r.error(name, "a <box> is rotated; vidal boxes are axis-aligned, undo the rotation")
            names.append(b.get("label"))
        r.add(name, e, boxes, names)


def _read_coco(r: _Reader) -> None:
    d = _read_json(r.path)
    if not isinstance(d, dict) or not isinstance(d.get("images"), list):
        raise LabelError(f"{r.path}: expected a COCO json with 'images', 'annotations', 'categories'")
    cats = {c.get("id"): c.get("name") for c in d.get("categories") or [] if isinstance(c, dict)}
    anns: dict[Any, list] = {}
    for a in d.get("annotations") or []:
        anns.setdefault(a.get("image_id"), []).append(a)
    for im in d["images"]:
        name = f"image {im.get('id')} ({im.get('file_name')})"
        if "vidal_video" in im:
            e = r.frame(name, im.get("vidal_video"), im.get("vidal_frame"), im.get("vidal_index"))
        else:
            key = parse_image_name(im.get("file_name") or "")
            if key is None:
                raise r.error(name, "no vidal_video / vidal_frame and its file_name is not <video>/<frame>.png")
            e = r.frame(name, *key)
        boxes, names = [], []
        for a in anns.get(im.get("id"), []):
            if a.get("category_id") not in cats:
                raise r.error(name, f"annotation {a.get('id')}: category_id {a.get('category_id')} is not in "
                                    f"'categories'")
            try:
                x, y, w, h = (float(v) for v in a["bbox"])
            except (KeyError, TypeError, ValueError):
                raise r.error(name, f"annotation {a.get('id')}: bbox is not [x, y, w, h]") from None
            boxes.append([x, y, x + w, y + h])
            names.append(cats[a["category_id"]])
        r.add(name, e, boxes, names)


def read_labels(path: str | os.PathLike, fmt: str, job: dict) -> dict[int, dict]:
    """``{flat index: {"boxes": [[x1, y1, x2, y2]], "labels": [ids], "task": name}}`` of the frames of
    ``job`` that ``path`` (the tool's export) labels; frames it leaves out stay pending."""
    if fmt not in FORMATS:
        raise LabelError(f"--format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    path = Path(path)
    if not path.is_file():
        raise LabelError(f"{path}: no such file")
    r = _Reader(path, job)
    {"label-studio": _read_label_studio, "cvat": _read_cvat, "coco": _read_coco}[fmt](r)
    return r.out
