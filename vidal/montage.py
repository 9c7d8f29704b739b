"""See what was chosen (issue 16): a montage of one cycle's selected frames with the model's
detections, and for temporal coherence its estimated false positives / negatives (thesis Fig. 2.3
colours, :mod:`vidal.viz`: ground truth yellow, detections red, estimated FP purple, estimated FN
green dashed), so a person sees why each frame was picked.

The frames of "cycle N" are the ones cycle N trains on in addition to the earlier ones (the same
numbering as the annotation jobs of :mod:`vidal.human`): with a human oracle the job file
``jobs/job_XXX.json`` (its pre-annotations and per-frame figures), else the selection of cycle N-1
(``cycle_XXX/selection.npz``; the detections from that cycle's ``pool_predictions.npz`` when the
acquisition stored them). For a TC run with stored predictions the estimates per box are computed
again from the config's tracker on the selected frames' videos (the same deterministic graph as
the run's); when that is not possible the tile shows the stored per-frame counts only.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from vidal.viz import draw_errors, save_png

TILE_WIDTH = 420
MAX_COLUMNS = 4


def _frames_of_cycle(root: Path, n: int, dataset) -> dict[str, Any]:
    """``{"frames", "predictions" (list or None), "logs", "scores", "source", "tc_cycle"}`` of cycle ``n``."""
    from vidal.human import job_numbers, read_job
    from vidal.workdir import ExperimentError, WorkDir

    if n in job_numbers(root):
        job = read_job(root, n)
        frames = [int(e["index"]) for e in job["frames"]]
        preds = None
        if any(e.get("prediction") is not None for e in job["frames"]):
            from vidal.detection.base import Predictions

            C = len(job["classes"])
            preds = []
            for e in job["frames"]:
                p = e.get("prediction") or {"boxes": [], "labels": [], "scores": []}
                k = len(p["labels"])
                probs = np.zeros((k, C + 1), np.float32)
                probs[np.arange(k), np.asarray(p["labels"], np.int64)] = p["scores"]
                preds.append(Predictions(np.asarray(p["boxes"], np.float32).reshape(-1, 4), p["scores"],
                                         p["labels"], probs))
        logs = {k: np.array([e["log"].get(k, np.nan) for e in job["frames"]]) for k in
                sorted({k for e in job["frames"] for k in e.get("log", {})})}
        scores = np.array([e.get("score", np.nan) for e in job["frames"]], np.float64)
        return {"frames": frames, "predictions": preds, "logs": logs, "scores": scores,
                "source": str(root / "jobs" / f"job_{n:03d}.json"), "tc_cycle": n - 1 if n > 0 else None}
    wd = WorkDir(root)
    if n < 1 or not wd.selected(n - 1):
        raise ExperimentError(f"{root}: no selection for cycle {n} (no {wd.path(max(n - 1, 0), 'selection.npz')}); "
                              f"the run has not selected its frames yet")
    sel = wd.read_selection(n - 1)
    pos = np.searchsorted(sel.candidates, sel.selected)
    stored = wd.stored_pool_predictions(n - 1, dataset.video_of_frames())
    preds = [stored[0][int(i)] for i in sel.selected] if stored is not None else None
    return {"frames": [int(i) for i in sel.selected], "predictions": preds,
            "logs": {k: np.asarray(v, np.float64)[pos] for k, v in sel.logs.items()},
            "scores": np.asarray(sel.selected_scores, np.float64), "source": str(wd.path(n - 1, "selection.npz")),
            "tc_cycle": n - 1, "all_predictions": stored[0] if stored is not None else None}


def _tc_errors(cfg: dict, dataset, predictions_all, frames) -> dict[int, Any] | None:
    """Per-box TC estimates of ``frames`` (None when the run is not TC or it cannot be redone)."""
    from vidal import build

    acq_cfg = cfg.get("acquisition") or {}
    if acq_cfg.get("name") != "temporal_coherence" or predictions_all is None:
        return None
    import vidal.acquisition  # noqa: F401 - registers the acquisitions

    spec = build.build_spec(cfg, acquisition=True, splits=(), detector=False, evaluation=False)
    tracker = build.build_tracker(cfg, spec.tracker, dataset)
    vids = sorted({dataset.locate(i)[0] for i in frames})
    res = spec.acquisition.estimate(dataset, predictions_all, tracker, videos=vids)
    return {i: res.frame(i) for i in frames}


def _tile(image, pred, errors, gt, classes, title: str) -> np.ndarray:
    h, w = image.shape[:2]
    scale = TILE_WIDTH / w
    if errors is not None:
        from vidal.viz import overlay_frame_errors

        return overlay_frame_errors(image, pred, errors, gt=gt, class_names=classes, title=title, scale=scale)
    return draw_errors(image, gt_boxes=None if gt is None else gt["boxes"],
                       gt_labels=None if gt is None else gt["labels"],
                       det_boxes=None if pred is None else pred.boxes, det_labels=None if pred is None else pred.labels,
                       det_scores=None if pred is None else pred.scores, class_names=classes, title=title,
                       scale=scale)


def _grid(tiles: list[np.ndarray], header: str) -> np.ndarray:
    cols = min(MAX_COLUMNS, max(1, math.ceil(math.sqrt(len(tiles)))))
    rows = math.ceil(len(tiles) / cols)
    th = max(t.shape[0] for t in tiles)
    tw = max(t.shape[1] for t in tiles)
    pad = 6
    head = 26
    out = np.full((head + rows * (th + pad) + pad, cols * (tw + pad) + pad, 3), 255, np.uint8)
    cv2.putText(out, header, (pad, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    for k, t in enumerate(tiles):
        r, c = divmod(k, cols)
        y, x = head + r * (th + pad) + pad, c * (tw + pad) + pad
        out[y:y + t.shape[0], x:x + t.shape[1]] = t
    return out


def show_selection(root: str | os.PathLike, out: str | os.PathLike, cycle: int | None = None, *,
                   max_frames: int = 24, min_score: float = 0.5) -> dict:
    """Write the montage PNG of cycle ``cycle``'s frames (default: the latest) to ``out`` (atomic);
    detections scored below ``min_score`` are not drawn (TC's per-box estimates show the detections
    of its graph, those above its own ``score_threshold``).
    Returns ``{"out", "cycle", "frames", "tc_boxes", "source"}``."""
    from vidal.config import load_config
    from vidal.data.validate import open_dataset
    from vidal.human import LabelStore, LabeledPool, job_numbers
    from vidal.workdir import ExperimentError, WorkDir, read_work_file

    root = Path(root)
    if not (root / "config.py").is_file():
        raise ExperimentError(f"{root}: holds no vidal AL run (no config.py); pass the --work-dir of tools/run_al.py")
    cfg = read_work_file(root / "config.py", lambda p: load_config(p))
    human = (cfg.get("al") or {}).get("oracle") == "human"
    dataset = open_dataset(cfg["dataset"]["train"])
    wd = WorkDir(root)
    if cycle is None:
        jobs = job_numbers(root)
        sels = [c + 1 for c in range(1000) if wd.selected(c)]
        have = sorted(set(jobs) | set(sels))
        if not have:
            raise ExperimentError(f"{root}: no selection yet; run tools/run_al.py until a cycle has selected frames")
        cycle = have[-1]
    got = _frames_of_cycle(root, cycle, dataset)
    frames = got["frames"][:max_frames]
    gt_of = dataset.ground_truth
    if human:  # only what people labelled
        gt_of = LabeledPool(dataset, LabelStore(root).arrays()).ground_truth
    errors = None
    try:
        errors = _tc_errors(cfg, dataset, got.get("all_predictions"), frames)
    except Exception as e:  # noqa: BLE001 - the montage still shows the stored counts
        print(f"show_selection: per-box TC estimates not redone ({type(e).__name__}: {e}); showing the counts")
    tiles = []
    for k, i in enumerate(frames):
        v, t = dataset.locate(i)
        bits = [f"{dataset.videos[v].name} #{t}"]
        if np.isfinite(got["scores"][k]):
            bits.append(f"score {got['scores'][k]:.3g}")
        for name, text in (("est_fp", "est FP"), ("est_fn", "est FN")):
            if name in got["logs"] and np.isfinite(got["logs"][name][k]):
                bits.append(f"{text} {int(got['logs'][name][k])}")
        gt = gt_of(i)
        pred = got["predictions"][k] if got["predictions"] is not None else None
        if pred is not None and errors is None:
            from vidal.detection.base import Predictions

            keep = pred.scores >= min_score
            if not keep.all():
                bits.append(f"{int((~keep).sum())} dets < {min_score:g} hidden")
            pred = Predictions(pred.boxes[keep], pred.scores[keep], pred.labels[keep], pred.probs[keep])
        tiles.append(_tile(dataset.image(i), pred, None if errors is None else errors[i],
                           gt if len(gt["boxes"]) else None, list(dataset.classes), "  ".join(bits)))
    header = (f"{root.name}: {len(got['frames'])} frames selected for cycle {cycle} ({Path(got['source']).name}"
              f"{', first ' + str(max_frames) if len(got['frames']) > max_frames else ''})"
              f"{'' if got['predictions'] is not None else '; no stored detections'}")
    out = Path(out)
    tmp = out.with_name(f".{out.stem}.tmp-{os.getpid()}.png")
    try:
        save_png(tmp, _grid(tiles, header))
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    dataset.close()
    return {"out": str(out), "cycle": cycle, "frames": len(frames), "tc_boxes": errors is not None,
            "source": got["source"]}
