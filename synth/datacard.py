"""Data cards: what a ``vidal-video-v1`` dataset holds, computed from its split files alone.

``collect_stats`` reads the written split files (``train.h5``, ``test.h5``, or any file in
the format of docs/format.md, synthetic or imported) and gathers, per split and per subset:
sequences and frames, objects and tracks per class, frames per condition and per area, the
fraction of frames without any annotated object, box sizes, and how redundant consecutive
frames are. ``render_markdown`` turns those figures into a readable card, ``render_montage``
draws a grid of sample frames with their boxes, and ``write_datacard`` writes both::

    md, png = write_datacard(["out/train.h5", "out/test.h5"], "data_cards", name="synthia-al-mini")

Frames are read lazily, one chunk (one frame) at a time; only the annotation arrays, which
are small, are read whole.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import zlib
from collections import Counter
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import cv2
import h5py
import numpy as np

from vidal.boxes import paired_iou
from vidal.data.h5format import VIDEOS_GROUP

#: A box shorter than this (pixels of the stored frame) counts as small.
SMALL_BOX_PX = 32
#: A pair of consecutive frames with a PSNR above this (dB) counts as near-duplicate.
PSNR_THRESHOLD_DB = 30.0
#: Display order of the known conditions and areas; unknown values follow, sorted.
CONDITION_ORDER = ("spring", "fall", "winter", "rain", "night")
AREA_ORDER = ("city", "town", "highway")

#: Montage layout (pixels): tile width, caption bar under each tile, legend bar at the bottom.
TILE_WIDTH = 320
CAPTION_HEIGHT = 40
LEGEND_HEIGHT = 30
#: Box colours (RGB) of the synth classes; other classes take colours from ``_EXTRA_COLOURS``.
CLASS_COLOURS = {
    "pedestrian": (230, 40, 40),
    "cyclist": (255, 170, 0),
    "car": (40, 120, 255),
    "wheelchair": (230, 0, 230),
}
_EXTRA_COLOURS = ((0, 200, 120), (255, 255, 0), (0, 220, 255), (160, 90, 255), (255, 120, 160),
                  (140, 220, 40), (200, 200, 200), (255, 90, 0))
_FONT = cv2.FONT_HERSHEY_SIMPLEX


# --------------------------------------------------------------------------------------------
# Reading


def condition_of(season: str, daytime: str, weather: str) -> str:
    """Collapse the per-video attributes to one condition label.

    ``night`` if the daytime is night, else ``rain`` if the weather is rain, else the season
    (``spring``, ``fall``, ``winter``, or ``unknown`` for imported data). This matches synth's
    scenario conditions, which change one of the three from spring / day / clear at a time.
    """
    if daytime == "night":
        return "night"
    if weather == "rain":
        return "rain"
    return season


def _text(value) -> str:
    """An HDF5 string attribute (str, bytes or numpy scalar) as ``str``."""
    if isinstance(value, bytes):
        return value.decode("utf-8")
    return str(value)


def _json_or_text(value):
    """A JSON attribute parsed, or its text when it is not valid JSON."""
    text = _text(value)
    try:
        return json.loads(text)
    except ValueError:
        return text


@dataclasses.dataclass
class _Video:
    """One video: where it is, its attributes and its annotation-only figures."""

    path: Path
    name: str
    split: str
    subset: str
    area: str
    condition: str
    n_frames: int
    height: int
    width: int
    objects: Counter             # class name -> boxes
    tracks: Counter              # class name -> unique track ids
    annotated_frames: np.ndarray  # int [K], sorted frames with at least one box
    heights: np.ndarray          # float [M], box heights in px
    iou_sum: float               # sum of IoUs of the same track's box in frames t, t+1
    iou_pairs: int               # number of such box pairs


def _track_ious(boxes: np.ndarray, track_ids: np.ndarray, frame_index: np.ndarray) -> np.ndarray:
    """IoU of each track's box between every pair of consecutive frames ``t, t+1``.

    A track absent from a frame breaks its chain: its boxes in ``t-1`` and ``t+1`` make no pair.
    """
    order = np.lexsort((frame_index, track_ids))
    b, tr, fr = boxes[order].astype(np.float64), track_ids[order], frame_index[order]
    pair = (tr[1:] == tr[:-1]) & (fr[1:] == fr[:-1] + 1)
    return paired_iou(b[:-1][pair], b[1:][pair])


def _read_video(path: Path, split: str, name: str, group: h5py.Group, classes: Sequence[str]) -> _Video:
    """Attributes and annotation figures of one video (its frames are not read)."""
    attrs = group.attrs

    def get(key: str) -> str:
        return _text(attrs.get(key, "unknown"))

    n_frames, height, width = (int(x) for x in group["frames"].shape[:3])  # shape only, no data
    boxes = group["boxes"][:].reshape(-1, 4)
    labels = group["labels"][:]
    track_ids = group["track_ids"][:]
    frame_index = group["frame_index"][:]
    names = np.array([classes[i - 1] if 1 <= i <= len(classes) else f"class_{i}" for i in labels],
                     dtype=object)
    objects = Counter(names.tolist())
    tracks = Counter(n for n, _ in set(zip(names.tolist(), track_ids.tolist())))
    ious = _track_ious(boxes, track_ids, frame_index)
    return _Video(path=path, name=name, split=split, subset=get("subset"), area=get("area"),
                  condition=condition_of(get("season"), get("daytime"), get("weather")),
                  n_frames=n_frames, height=height, width=width, objects=objects, tracks=tracks,
                  annotated_frames=np.unique(frame_index), heights=(boxes[:, 3] - boxes[:, 1]).astype(np.float64),
                  iou_sum=float(ious.sum()), iou_pairs=int(len(ious)))


def _read_file(path: Path) -> tuple[dict, list[_Video]]:
    """Root attributes (plus size on disk) and the videos of one split file."""
    with h5py.File(path, "r") as f:
        attrs = f.attrs
        classes = [_text(c) for c in attrs.get("classes", [])]
        split = _text(attrs.get("split", path.stem))
        videos = [_read_video(path, split, name, f[VIDEOS_GROUP][name], classes)
                  for name in sorted(f[VIDEOS_GROUP])]
        seed = attrs.get("seed")
        info = {
            "path": str(path),
            "split": split,
            "classes": classes,
            "command": _text(attrs.get("command", "")),
            "seed": int(seed) if seed is not None else None,
            "generator_config": _json_or_text(attrs.get("generator_config", "")),
            "created_by": _text(attrs.get("created_by", "")),
            "fps": float(attrs["fps"]) if "fps" in attrs else None,
        }
    n_frames = sum(v.n_frames for v in videos)
    info["resolutions"] = sorted({f"{v.width}x{v.height}" for v in videos})
    info["videos"] = len(videos)
    info["frames"] = n_frames
    info["bytes"] = os.path.getsize(path)
    info["bytes_per_frame"] = info["bytes"] / n_frames if n_frames else None
    return info, videos


# --------------------------------------------------------------------------------------------
# Redundancy between consecutive frames


def _frame_pair_figures(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """Mean absolute difference (0-255 scale) and PSNR (dB, ``inf`` if identical) of two frames."""
    diff = (a.astype(np.int16) - b.astype(np.int16)).ravel()
    d64 = diff.astype(np.float64)
    mse = float(d64 @ d64) / diff.size  # a BLAS dot: exact for these integer sums, and fast
    psnr = math.inf if mse == 0 else 10.0 * math.log10(255.0 ** 2 / mse)
    return float(np.abs(diff).sum(dtype=np.int64)) / diff.size, psnr


def _sample_pairs(videos: Sequence[_Video], n: int, rng: np.random.Generator) -> list[tuple[_Video, int]]:
    """``n`` distinct consecutive-frame pairs ``(video, t)`` (frames t, t+1), uniform over the
    group's pairs; all of them when the group has at most ``n``. Sorted by video and frame."""
    counts = np.array([max(v.n_frames - 1, 0) for v in videos], dtype=np.int64)
    total = int(counts.sum())
    picks = np.arange(total) if total <= n else np.sort(rng.choice(total, size=n, replace=False))
    starts = np.concatenate([[0], np.cumsum(counts)])
    which = np.searchsorted(starts, picks, side="right") - 1
    return [(videos[i], int(p - starts[i])) for i, p in zip(which, picks)]


def _redundancy(videos: Sequence[_Video], files: Mapping[Path, h5py.File], n_pairs: int,
                rng: np.random.Generator) -> dict:
    """Pixel redundancy of a seeded sample of consecutive frame pairs of ``videos``."""
    diffs, psnrs = [], []
    for video, t in _sample_pairs(videos, n_pairs, rng):
        pair = files[video.path][VIDEOS_GROUP][video.name]["frames"][t:t + 2]  # two chunks
        diff, psnr = _frame_pair_figures(pair[0], pair[1])
        diffs.append(diff)
        psnrs.append(psnr)
    if not diffs:
        return {"pairs": 0, "mean_abs_diff": None, "psnr_above_30db": None, "median_psnr_db": None}
    return {
        "pairs": len(diffs),
        "mean_abs_diff": float(np.mean(diffs)),
        "psnr_above_30db": float(np.mean(np.array(psnrs) > PSNR_THRESHOLD_DB)),
        "median_psnr_db": float(np.median(psnrs)),
    }


# --------------------------------------------------------------------------------------------
# Aggregation


def _ordered(counter: Counter, known: Sequence[str]) -> dict[str, int]:
    """``counter`` as a dict, known keys first in their order, then the rest sorted."""
    keys = [k for k in known if k in counter] + sorted(k for k in counter if k not in known)
    return {k: int(counter[k]) for k in keys}


def _group_stats(videos: Sequence[_Video], classes: Sequence[str], files: Mapping[Path, h5py.File],
                 redundancy_pairs: int, rng: np.random.Generator) -> dict:
    """All figures of one group of videos (a split, or a subset of a split)."""
    frames = sum(v.n_frames for v in videos)
    objects, tracks, conditions, areas = Counter(), Counter(), Counter(), Counter()
    for v in videos:
        objects.update(v.objects)
        tracks.update(v.tracks)
        conditions[v.condition] += v.n_frames
        areas[v.area] += v.n_frames
    empty = sum(v.n_frames - len(v.annotated_frames) for v in videos)
    heights = np.concatenate([v.heights for v in videos]) if videos else np.zeros(0)
    iou_pairs = sum(v.iou_pairs for v in videos)
    return {
        "sequences": len(videos),
        "frames": frames,
        "boxes": int(len(heights)),
        "objects": {c: int(objects[c]) for c in classes},
        "tracks": {c: int(tracks[c]) for c in classes},
        "frames_per_condition": _ordered(conditions, CONDITION_ORDER),
        "frames_per_area": _ordered(areas, AREA_ORDER),
        "empty_frames": int(empty),
        "empty_fraction": empty / frames if frames else None,
        "box_height_median_px": float(np.median(heights)) if len(heights) else None,
        "small_box_fraction": float(np.mean(heights < SMALL_BOX_PX)) if len(heights) else None,
        "track_iou_mean": sum(v.iou_sum for v in videos) / iou_pairs if iou_pairs else None,
        "track_iou_pairs": int(iou_pairs),
        "redundancy": _redundancy(videos, files, redundancy_pairs, rng),
    }


def _group_rng(seed: int, key: str) -> np.random.Generator:
    """Independent, reproducible random stream of one group."""
    return np.random.default_rng([seed, zlib.crc32(key.encode())])


def _all_classes(infos: Sequence[dict], videos: Sequence[_Video]) -> list[str]:
    """Class names of all files in order of first appearance (plus unnamed ids met in labels)."""
    classes: list[str] = []
    for info in infos:
        classes += [c for c in info["classes"] if c not in classes]
    for v in videos:
        classes += sorted(c for c in v.objects if c not in classes)
    return classes


def _read_files(paths: list[Path]) -> tuple[list, list, list]:
    """(per-file info, videos of all files, class names) of several split files."""
    infos, videos = [], []
    for path in paths:
        info, file_videos = _read_file(path)
        infos.append(info)
        videos += file_videos
    return infos, videos, _all_classes(infos, videos)


def collect_stats(paths: list[Path], *, redundancy_pairs: int = 200, seed: int = 0) -> dict:
    """Figures of a dataset, computed from its split files.

    Args:
        paths: ``vidal-video-v1`` split files. Files with the same root ``split`` attribute are
            pooled into one split.
        redundancy_pairs: consecutive frame pairs sampled (seeded, without replacement) per
            split and per subset for the pixel redundancy figures; all pairs when there are fewer.
        seed: seed of that sample.

    Returns:
        A dict: ``files`` (per file: path, split, command, seed, generator_config (parsed JSON),
        created_by, fps, resolutions, videos, frames, bytes, bytes_per_frame), ``classes``, the
        provenance of the first file (``command``, ``seed``, ``generator_config``,
        ``created_by``, ``fps``, ``resolutions``), and ``splits``: split name -> figures of the
        split plus ``subsets``: subset name -> figures of the subset. The figures of a group are
        ``sequences, frames, boxes``, ``objects`` and ``tracks`` (class name -> count),
        ``frames_per_condition``, ``frames_per_area``, ``empty_frames``, ``empty_fraction``,
        ``box_height_median_px``, ``small_box_fraction`` (boxes under ``SMALL_BOX_PX`` high),
        ``track_iou_mean`` / ``track_iou_pairs`` (IoU of a track's box in frames t and t+1,
        from the annotations, over all such pairs) and ``redundancy`` (``pairs``,
        ``mean_abs_diff`` on the 0-255 scale, ``psnr_above_30db`` fraction, ``median_psnr_db``,
        which is ``inf`` when most pairs are identical). Fractions are in ``[0, 1]``; a figure
        of a group without frames, boxes or pairs is ``None``.
    """
    if not paths:
        raise ValueError("collect_stats needs at least one split file")
    if redundancy_pairs < 0:
        raise ValueError(f"redundancy_pairs must be >= 0, got {redundancy_pairs}")
    paths = [Path(p) for p in paths]
    infos, videos, classes = _read_files(paths)

    splits: dict[str, dict] = {}
    files = {p: h5py.File(p, "r") for p in dict.fromkeys(paths)}
    try:
        for split in dict.fromkeys(info["split"] for info in infos):
            in_split = [v for v in videos if v.split == split]
            stats = _group_stats(in_split, classes, files, redundancy_pairs, _group_rng(seed, split))
            stats["subsets"] = {
                subset: _group_stats([v for v in in_split if v.subset == subset], classes, files,
                                     redundancy_pairs, _group_rng(seed, f"{split}/{subset}"))
                for subset in dict.fromkeys(v.subset for v in in_split)}
            splits[split] = stats
    finally:
        for f in files.values():
            f.close()

    first = infos[0]
    return {
        "files": infos,
        "classes": classes,
        **{k: first[k] for k in ("command", "seed", "generator_config", "created_by", "fps")},
        "resolutions": sorted({r for info in infos for r in info["resolutions"]}),
        "splits": splits,
        "redundancy_seed": seed,
        "small_box_px": SMALL_BOX_PX,
    }


# --------------------------------------------------------------------------------------------
# Markdown


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.1f}%"


def _num(x: float | None, fmt: str = ".2f") -> str:
    if x is None:
        return "n/a"
    if math.isinf(x):
        return "inf (identical)"
    return format(x, fmt)


def _size(n_bytes: float) -> str:
    """A size on disk in B, KiB, MiB or GiB."""
    for unit in ("B", "KiB", "MiB"):
        if n_bytes < 1024:
            return f"{n_bytes:.0f} {unit}" if unit == "B" else f"{n_bytes:.1f} {unit}"
        n_bytes /= 1024
    return f"{n_bytes:.1f} GiB"


def _table(header: Sequence[str], rows: Iterable[Sequence[object]], *, text_cols: int = 1) -> list[str]:
    """A markdown table; the first ``text_cols`` columns are left-aligned, the others (numbers)
    right-aligned."""
    lines = ["| " + " | ".join(header) + " |",
             "|" + "|".join([":---"] * text_cols + ["---:"] * (len(header) - text_cols)) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return lines


def _groups(stats: dict) -> list[tuple[str, str, dict]]:
    """``(split, subset label, figures)`` rows: each split's subsets, then the split total."""
    rows = []
    for split, s in stats["splits"].items():
        rows += [(split, subset, g) for subset, g in s["subsets"].items()]
        rows.append((f"**{split}**", "**all**", s))
    return rows


def _config_summary(cfg, *, max_items: int = 24) -> list[str]:
    """Bullet lines of the scalar (and short list) entries of a generator config, two levels deep."""
    if not isinstance(cfg, dict):
        return [f"- {cfg}"] if cfg not in ("", None) else ["- (none recorded)"]
    items = []

    def short(v) -> bool:
        return (isinstance(v, (str, int, float, bool)) or v is None) and len(str(v)) <= 120 or (
            isinstance(v, list) and len(v) <= 8 and all(isinstance(x, (str, int, float)) for x in v))

    for key, value in cfg.items():
        if short(value):
            items.append((key, value))
        elif isinstance(value, dict):
            items += [(f"{key}.{k}", v) for k, v in value.items() if short(v)]
    lines = [f"- `{k}`: {json.dumps(v) if isinstance(v, list) else v}" for k, v in items[:max_items]]
    if len(items) > max_items:
        lines.append(f"- ... and {len(items) - max_items} more (see the full config below)")
    return lines or ["- (no scalar entries; see the full config below)"]


def _provenance_section(stats: dict) -> list[str]:
    """How the files were made: command, seed, producer, generator config."""
    files = stats["files"]
    lines = ["## How it was made", ""]
    same = len({(f["command"], f["seed"]) for f in files}) == 1
    for f in (files[:1] if same else files):
        where = "" if same else f" (`{Path(f['path']).name}`)"
        lines += [f"Command{where}, seed `{f['seed']}`, produced by `{f['created_by'] or 'unknown'}`:", "",
                  "```bash", f["command"] or "(not recorded)", "```", ""]
    lines += ["Generator config (summary):", ""] + _config_summary(stats["generator_config"]) + [""]
    if isinstance(stats["generator_config"], (dict, list)):
        lines += ["<details><summary>Full generator config (root attribute <code>generator_config</code>)"
                  "</summary>", "", "```json", json.dumps(stats["generator_config"], indent=2, sort_keys=True),
                  "```", "", "</details>", ""]
    lines += _table(["file", "split", "videos", "frames", "resolution", "fps", "size", "bytes / frame"],
                    [(f"`{Path(f['path']).name}`", f["split"], f["videos"], f["frames"],
                      ", ".join(f["resolutions"]), _num(f["fps"], "g"), _size(f["bytes"]),
                      _num(f["bytes_per_frame"], ",.0f")) for f in files], text_cols=2)
    return lines + [""]


def _counts_section(stats: dict) -> list[str]:
    lines = ["## Sequences and frames", ""]
    lines += _table(["split", "subset", "sequences", "frames", "boxes", "frames without objects"],
                    [(split, subset, g["sequences"], g["frames"], g["boxes"],
                      f"{g['empty_frames']} ({_pct(g['empty_fraction'])})")
                     for split, subset, g in _groups(stats)], text_cols=2)
    return lines + [""]


def _classes_section(stats: dict) -> list[str]:
    classes = stats["classes"]
    lines = ["## Objects per class", "",
             "Objects are annotated boxes (one per object per frame); tracks are distinct objects.", ""]
    header = ["class"]
    for split in stats["splits"]:
        header += [f"{split} boxes", f"{split} %", f"{split} tracks"]
    rows = []
    for c in classes:
        row = [c]
        for s in stats["splits"].values():
            share = s["objects"][c] / s["boxes"] if s["boxes"] else None
            row += [s["objects"][c], _pct(share), s["tracks"][c]]
        rows.append(row)
    lines += _table(header, rows) + ["", "Boxes per class and subset:", ""]
    lines += _table(["split", "subset"] + classes,
                    [(split, subset, *(g["objects"][c] for c in classes)) for split, subset, g in _groups(stats)],
                    text_cols=2)
    return lines + [""]


def _share_table(stats: dict, key: str, label: str) -> list[str]:
    """Frames per value of ``key`` (condition / area): count and percent of each split."""
    values = []
    for s in stats["splits"].values():
        values += [v for v in s[key] if v not in values]
    header = [label]
    for split in stats["splits"]:
        header += [f"{split} frames", f"{split} %"]
    rows = []
    for value in values:
        row = [value]
        for s in stats["splits"].values():
            n = s[key].get(value, 0)
            row += [n, _pct(n / s["frames"] if s["frames"] else None)]
        rows.append(row)
    return _table(header, rows)


def _conditions_section(stats: dict) -> list[str]:
    lines = ["## Frames per condition and area", "",
             "A condition collapses the per-video attributes: `night` if daytime is night, `rain` if "
             "the weather is rain, else the season.", ""]
    lines += _share_table(stats, "frames_per_condition", "condition") + [""]
    lines += _share_table(stats, "frames_per_area", "area") + [""]
    return lines


def _redundancy_section(stats: dict) -> list[str]:
    lines = ["## Redundancy between consecutive frames", "",
             f"Pixel figures are measured on a random sample (seed {stats['redundancy_seed']}) of "
             "consecutive frame pairs per row: the mean absolute difference of the pixel values "
             f"(0-255) and the share of pairs with a PSNR above {PSNR_THRESHOLD_DB:g} dB (near-duplicates). "
             "The track IoU is the IoU of the same object's box in frames t and t+1, over all such "
             "pairs in the annotations.", ""]
    lines += _table(["split", "subset", "pairs sampled", "mean abs diff", f"PSNR > {PSNR_THRESHOLD_DB:g} dB",
                     "median PSNR (dB)", "track IoU t→t+1", "box pairs"],
                    [(split, subset, g["redundancy"]["pairs"], _num(g["redundancy"]["mean_abs_diff"]),
                      _pct(g["redundancy"]["psnr_above_30db"]), _num(g["redundancy"]["median_psnr_db"], ".1f"),
                      _num(g["track_iou_mean"], ".3f"), g["track_iou_pairs"])
                     for split, subset, g in _groups(stats)], text_cols=2)
    return lines + [""]


def _box_size_section(stats: dict) -> list[str]:
    lines = ["## Box sizes", "", "Heights in pixels of the stored frames.", ""]
    lines += _table(["split", "subset", "boxes", "median height (px)", f"< {stats['small_box_px']} px high"],
                    [(split, subset, g["boxes"], _num(g["box_height_median_px"], ".1f"),
                      _pct(g["small_box_fraction"])) for split, subset, g in _groups(stats)], text_cols=2)
    return lines + [""]


def _caveats_section(stats: dict) -> list[str]:
    synthetic = all(f["created_by"].startswith("synth") for f in stats["files"])
    lines = ["## Intended use and caveats", ""]
    if synthetic:
        lines.append(
            "This dataset is synthetic: rendered by synth, a simple SYNTHIA-AL-style driving-scene "
            "generator, not recorded. It is meant for evaluating active learning for video object "
            "detection: consecutive frames are deliberately redundant, and the imbalance between "
            "classes, subsets, areas and conditions (few night sequences, rare wheelchair users) is "
            "deliberate, so that a selection method has something to find. It is not a benchmark of "
            "detector accuracy and not a substitute for real driving data: its geometry, lighting "
            "and motion are simplified. Boxes are tight boxes of the visible pixels; objects too "
            "small or too occluded to annotate have no box.")
    else:
        lines.append(
            "These figures are computed from the split files alone. Check the producer and the "
            "command above for the source of the data and its licence; attributes recorded as "
            "`unknown` were not available to the importer.")
    return lines + [""]


def render_markdown(stats: dict, *, title: str | None = None, montage: str | None = None) -> str:
    """A readable markdown data card of ``stats`` (from ``collect_stats``).

    Args:
        title: dataset name in the heading (default: the generator config's ``name`` or
            ``preset``, else the file names).
        montage: relative path of the montage PNG to link (omitted when None).
    """
    if title is None:
        cfg = stats["generator_config"]
        title = (cfg.get("name") or cfg.get("preset")) if isinstance(cfg, dict) else None
        title = title or ", ".join(Path(f["path"]).name for f in stats["files"])
    total_frames = sum(s["frames"] for s in stats["splits"].values())
    total_seqs = sum(s["sequences"] for s in stats["splits"].values())
    lines = [f"# Data card: {title}", "",
             f"{total_seqs} sequences, {total_frames} frames in {len(stats['files'])} file(s) of the "
             f"`vidal-video-v1` format (docs/format.md); classes: {', '.join(stats['classes'])}; "
             f"{', '.join(stats['resolutions'])} px at {_num(stats['fps'], 'g')} fps.", ""]
    if montage:
        lines += [f"![Sample frames with their boxes, one tile per subset and condition where possible]({montage})",
                  ""]
    lines += _provenance_section(stats)
    lines += _counts_section(stats)
    lines += _classes_section(stats)
    lines += _conditions_section(stats)
    lines += _redundancy_section(stats)
    lines += _box_size_section(stats)
    lines += _caveats_section(stats)
    lines += ["_Generated by `synth/datacard.py` from the split files._", ""]
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# Montage


def _colour_map(classes: Sequence[str], colours: Mapping[str, tuple] | None) -> dict[str, tuple]:
    """RGB colour of each class: ``colours``, then ``CLASS_COLOURS``, then a fixed cycle."""
    given = {**CLASS_COLOURS, **(colours or {})}
    extra = iter(_EXTRA_COLOURS * (len(classes) // len(_EXTRA_COLOURS) + 1))
    return {c: tuple(int(x) for x in given[c]) if c in given else next(extra) for c in classes}


def _pick_tiles(videos: Sequence[_Video], n: int, rng: np.random.Generator) -> list[tuple[_Video, int]]:
    """Up to ``n`` distinct ``(video, frame)`` tiles that show as many subsets, conditions and
    areas as possible.

    Videos are picked greedily by how many not yet shown subsets (weight 2), conditions (2),
    areas (1) and subset/condition pairs (1) they add, ties broken at random, so a rare subset
    or condition shows before a second tile of a common one. Once every video is used, further
    tiles take other frames of the same videos. Frames with objects are preferred.
    """
    order = [videos[i] for i in rng.permutation(len(videos))]
    shown: set = set()
    used: dict[int, set] = {}
    tiles: list[tuple[_Video, int]] = []

    def features(v: _Video) -> dict:
        return {("subset", v.split, v.subset): 2, ("condition", v.condition): 2, ("area", v.area): 1,
                ("pair", v.split, v.subset, v.condition): 1}

    while len(tiles) < n:
        candidates = [v for v in order if v.n_frames > len(used.get(id(v), ()))]
        if not candidates:
            break
        fresh = [v for v in candidates if id(v) not in used] or candidates
        video = max(fresh, key=lambda v: sum(w for f, w in features(v).items() if f not in shown))
        shown.update(features(video))
        taken = used.setdefault(id(video), set())
        annotated = [t for t in video.annotated_frames.tolist() if t not in taken]
        pool = annotated or [t for t in range(video.n_frames) if t not in taken]
        t = int(pool[rng.integers(len(pool))])
        taken.add(t)
        tiles.append((video, t))
    splits = list(dict.fromkeys(v.split for v in videos))
    return sorted(tiles, key=lambda vt: (splits.index(vt[0].split), vt[0].subset, vt[0].condition,
                                         vt[0].name, vt[1]))


def _put_label(img: np.ndarray, text: str, x: int, y: int, colour: tuple, scale: float = 0.4) -> None:
    """``text`` in black on a ``colour`` background whose bottom-left corner is (x, y)."""
    (w, h), base = cv2.getTextSize(text, _FONT, scale, 1)
    x = int(np.clip(x, 0, max(img.shape[1] - w - 2, 0)))
    y = int(np.clip(y, h + base, img.shape[0]))
    cv2.rectangle(img, (x, y - h - base), (x + w + 2, y), colour, -1)
    cv2.putText(img, text, (x + 1, y - base), _FONT, scale, (0, 0, 0), 1, cv2.LINE_AA)


def _draw_tile(frame: np.ndarray, boxes: np.ndarray, names: Sequence[str], colours: Mapping[str, tuple],
               caption: tuple[str, str], tile_width: int, tile_height: int) -> np.ndarray:
    """One montage tile (RGB): the frame scaled to ``tile_width``, its boxes, a caption bar."""
    h, w = frame.shape[:2]
    scale = tile_width / w
    new_h = min(int(round(h * scale)), tile_height)
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    tile = np.zeros((tile_height + CAPTION_HEIGHT, tile_width, 3), np.uint8)
    tile[:new_h] = cv2.resize(np.ascontiguousarray(frame), (tile_width, new_h), interpolation=interp)
    view = tile[:new_h]
    for (x1, y1, x2, y2), name in zip(boxes * scale, names):
        colour = colours[name]
        p1, p2 = (int(round(x1)), int(round(y1))), (int(round(x2)) - 1, int(round(y2)) - 1)
        cv2.rectangle(view, p1, p2, colour, 2 if y2 - y1 >= 24 else 1)
        if y2 - y1 >= 14:  # labels on tiny boxes would hide the scene; the legend names colours
            _put_label(view, name, p1[0], p1[1], colour, 0.4)
    for i, line in enumerate(caption):
        cv2.putText(tile, line, (6, tile_height + 16 + 17 * i), _FONT, 0.45, (235, 235, 235), 1, cv2.LINE_AA)
    cv2.line(tile, (0, tile.shape[0] - 1), (tile_width - 1, tile.shape[0] - 1), (90, 90, 90), 1)
    cv2.line(tile, (tile_width - 1, 0), (tile_width - 1, tile.shape[0] - 1), (90, 90, 90), 1)
    return tile


def _legend(width: int, colours: Mapping[str, tuple]) -> np.ndarray:
    """A bar naming the colour of each class."""
    bar = np.full((LEGEND_HEIGHT, width, 3), 30, np.uint8)
    x = 8
    for name, colour in colours.items():
        cv2.rectangle(bar, (x, 8), (x + 14, 22), colour, -1)
        cv2.putText(bar, name, (x + 20, 20), _FONT, 0.45, (235, 235, 235), 1, cv2.LINE_AA)
        x += 20 + cv2.getTextSize(name, _FONT, 0.45, 1)[0][0] + 18
    return bar


def render_montage(paths: list[Path], out_png: str | os.PathLike, *, n: int = 12, seed: int = 0,
                   cols: int = 4, tile_width: int = TILE_WIDTH,
                   colours: Mapping[str, tuple[int, int, int]] | None = None) -> Path:
    """Write a PNG grid of sample frames with their boxes.

    Tiles come from as many subsets, conditions and areas as possible (see ``_pick_tiles``);
    each shows the frame scaled to ``tile_width`` px wide, its boxes in a colour per class with
    the class name, and a caption (subset, area, condition; video and frame). A legend bar at
    the bottom names the class colours. The image is ``cols * tile_width`` px wide and
    ``rows * (tile_height + CAPTION_HEIGHT) + LEGEND_HEIGHT`` px high, where ``rows =
    ceil(tiles / cols)``, ``tiles = min(n, frames in the dataset)`` and ``tile_height`` is the
    tallest scaled frame.

    Args:
        colours: RGB colour per class name (default ``CLASS_COLOURS``, then a fixed cycle).

    Returns:
        ``out_png``.
    """
    if n < 1 or cols < 1 or tile_width < 32:
        raise ValueError(f"need n >= 1, cols >= 1 and tile_width >= 32, got n={n}, cols={cols}, "
                         f"tile_width={tile_width}")
    paths = [Path(p) for p in paths]
    infos, videos, classes = _read_files(paths)
    palette = _colour_map(classes, colours)
    class_names = {Path(info["path"]): info["classes"] for info in infos}
    tiles = _pick_tiles(videos, n, np.random.default_rng(seed))
    if not tiles:
        raise ValueError(f"no frames to show in {', '.join(map(str, paths))}")
    tile_height = max(int(round(v.height * tile_width / v.width)) for v, _ in tiles)

    images = []
    for video, t in tiles:
        with h5py.File(video.path, "r") as f:
            group = f[VIDEOS_GROUP][video.name]
            frame = group["frames"][t]
            lo, hi = np.searchsorted(group["frame_index"][:], [t, t + 1])
            boxes = group["boxes"][lo:hi].reshape(-1, 4)
            labels = group["labels"][lo:hi]
        names = class_names[video.path]
        label_names = [names[i - 1] if 1 <= i <= len(names) else f"class_{i}" for i in labels]
        caption = (f"{video.split}/{video.subset}  {video.area}  {video.condition}",
                   f"{video.name}  frame {t}")
        images.append(_draw_tile(frame, boxes, label_names, palette, caption, tile_width, tile_height))

    rows = math.ceil(len(images) / cols)
    blank = np.zeros_like(images[0])
    images += [blank] * (rows * cols - len(images))
    grid = np.vstack([np.hstack(images[r * cols:(r + 1) * cols]) for r in range(rows)])
    grid = np.vstack([grid, _legend(grid.shape[1], palette)])
    out_png = Path(out_png)
    out_png.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(out_png), cv2.cvtColor(grid, cv2.COLOR_RGB2BGR)):
        raise OSError(f"could not write {out_png}")
    return out_png


# --------------------------------------------------------------------------------------------


def write_datacard(paths: list[Path], out_dir: str | os.PathLike, *, name: str, redundancy_pairs: int = 200,
                   seed: int = 0, montage_tiles: int = 12) -> tuple[Path, Path]:
    """Write ``<out_dir>/<name>.md`` and ``<out_dir>/<name>_montage.png``.

    The markdown links the montage by its file name, so the two files move together.

    Returns:
        ``(md_path, png_path)``.
    """
    if not name or "/" in name or "\\" in name:
        raise ValueError(f"name must be a plain file name without a directory, got {name!r}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    stats = collect_stats(paths, redundancy_pairs=redundancy_pairs, seed=seed)
    png_path = render_montage(paths, out_dir / f"{name}_montage.png", n=montage_tiles, seed=seed)
    md_path = out_dir / f"{name}.md"
    md_path.write_text(render_markdown(stats, title=name, montage=png_path.name))
    return md_path, png_path
