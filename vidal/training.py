"""Plain functions to train and evaluate a detector from a config (design.md 5.4), shared by
``tools/train.py``, ``tools/evaluate.py`` and the AL loop.

- :func:`predict_frames`: detector output on frames of a dataset, in batches, with a progress bar.
- :func:`evaluate_thesis_frames`: the thesis protocol's metrics, unrounded with per-class detail
  (the AL loop's ``eval.json``).
- :func:`evaluate_frames`: the thesis protocol (NMS 0.5, scores ≥ 0.5, VOC AP@0.5), the same AP
  without the score threshold, and optionally COCO metrics, on frames of a dataset.
- :func:`train_detector`: train on a split with evaluation after chosen epochs, writing
  ``metrics.jsonl`` (one row per evaluated epoch with the *training* minutes so far, evaluation
  time excluded), ``latest.pth`` after every epoch and ``final.pth``.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from vidal.detection.base import Predictions
from vidal.evaluation import coco_metrics, evaluate_detections, evaluate_thesis
from vidal.jsonsafe import json_safe


class FrameView(Sequence):
    """Lazy ``Sequence`` of the samples ``dataset[i]`` for ``i`` in ``indices`` (nothing is read
    until an item is asked for), e.g. the labeled frames handed to ``Detector.train``."""

    def __init__(self, dataset, indices: Sequence[int] | None = None):
        self.dataset = dataset
        self.indices = np.arange(len(dataset)) if indices is None else np.asarray(indices, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.indices)

    def labels_of(self, k: int) -> np.ndarray:
        """Class ids of item ``k`` from the ground truth alone (no image decoded)."""
        return self.dataset.ground_truth(int(self.indices[k]))["labels"]

    def __getitem__(self, k):
        if isinstance(k, slice):
            return FrameView(self.dataset, self.indices[k])
        return self.dataset[int(self.indices[k])]


def spread_indices(n_total: int, n: int | None) -> np.ndarray | None:
    """``n`` frame indices spread evenly over ``0..n_total-1`` (None when ``n`` is None or covers
    every frame: use all frames)."""
    if n is None or n >= n_total:
        return None
    if n < 1:
        raise ValueError(f"need at least 1 frame to evaluate, got {n}")
    return np.unique(np.linspace(0, n_total - 1, n).round().astype(np.int64))


def predict_frames(detector, dataset, indices: Sequence[int] | None = None, *, batch_size: int = 8,
                   progress: bool = True, desc: str = "predict") -> list[Predictions]:
    """``detector.predict`` on ``dataset.image(i)`` for ``i`` in ``indices`` (default: all)."""
    from tqdm import tqdm

    indices = range(len(dataset)) if indices is None else [int(i) for i in indices]
    out: list[Predictions] = []
    with tqdm(total=len(indices), desc=desc, unit="frame", disable=not progress, leave=False) as bar:
        for s in range(0, len(indices), batch_size):
            chunk = indices[s:s + batch_size]
            out += detector.predict([dataset.image(i) for i in chunk])
            bar.update(len(chunk))
    return out


def evaluate_frames(dataset, predictions: Sequence[Predictions], indices: Sequence[int] | None = None, *,
                    score_threshold: float = 0.5, nms_iou: float = 0.5, coco: bool = False,
                    matching: str = "voc") -> dict[str, Any]:
    """Metrics of ``predictions`` (aligned with ``indices``) against the dataset's ground truth.

    Returns ``mAP50`` (thesis 2.5.1: per-class NMS at ``nms_iou``, scores < ``score_threshold``
    rejected, VOC all-point AP@0.5), ``AP50`` per class, ``mAP50_all_scores`` (same AP without the
    threshold), ``num_frames``, and ``coco`` (pycocotools metrics) when asked. NaN becomes null.
    """
    indices = range(len(dataset)) if indices is None else [int(i) for i in indices]
    gts = [dataset.ground_truth(i) for i in indices]
    C, names = dataset.num_classes, list(dataset.classes)
    thesis = evaluate_thesis_frames(dataset, predictions, indices, score_threshold=score_threshold, nms_iou=nms_iou,
                                    matching=matching, ground_truth=gts)
    full = evaluate_detections(gts, predictions, C, class_names=names, nms_iou=nms_iou, matching=matching)
    out = {"mAP50": thesis["mAP"], "AP50": thesis["AP"], "mAP50_all_scores": full["mAP"],
           "AP50_all_scores": full["AP"], "num_frames": len(gts)}
    if coco:
        out["coco"] = coco_metrics(gts, predictions, C, class_names=names)
    return json_safe(out, 6)


def evaluate_thesis_frames(dataset, predictions: Sequence[Predictions], indices: Sequence[int] | None = None, *,
                           score_threshold: float = 0.5, nms_iou: float = 0.5, matching: str = "voc",
                           ground_truth: Sequence[dict] | None = None) -> dict[str, Any]:
    """:func:`vidal.evaluation.evaluate_thesis` of ``predictions`` (aligned with ``indices``, default
    all frames) against the dataset's ground truth (``ground_truth``: already read), unrounded:
    ``mAP``, ``AP`` and ``per_class`` (what the AL loop writes in ``eval.json``)."""
    if ground_truth is None:
        indices = range(len(dataset)) if indices is None else [int(i) for i in indices]
        ground_truth = [dataset.ground_truth(i) for i in indices]
    return evaluate_thesis(ground_truth, predictions, dataset.num_classes, class_names=list(dataset.classes),
                           nms_iou=nms_iou, score_threshold=score_threshold, matching=matching)


def append_jsonl(path: Path, row: dict) -> None:
    """Append one JSON row and flush it to disk (a killed run keeps every completed row)."""
    with open(path, "a") as f:
        f.write(json.dumps(json_safe(row, 6)) + "\n")
        f.flush()
        os.fsync(f.fileno())


def train_detector(detector, train_set, *, work_dir: str | Path, test_set=None, eval_epochs: Sequence[int] = (),
                   eval_indices: Sequence[int] | None = None, eval_options: dict[str, Any] | None = None,
                   train_indices: Sequence[int] | None = None, progress: bool = True,
                   log=print) -> list[dict[str, Any]]:
    """Train ``detector`` on ``train_set`` (all frames or ``train_indices``) with its configured
    schedule; evaluate on ``test_set`` after each epoch in ``eval_epochs`` (1-based) and at the end.

    Writes into ``work_dir``: ``metrics.jsonl`` (rows: ``epoch``, ``train_minutes`` (cumulative
    training time, evaluations excluded), ``loss`` (mean over the epoch), metrics of
    :func:`evaluate_frames`), ``latest.pth`` after each epoch, ``final.pth`` at the end.
    Returns the rows.

    In a ``--launcher ddp`` run (:mod:`vidal.distributed`) every rank trains (its share of each
    global batch) and only rank 0 evaluates and writes, the others waiting at a barrier after each
    epoch; the other ranks return no rows.
    """
    from vidal import distributed

    ranks = distributed.current()
    work_dir = Path(work_dir)
    metrics_path = work_dir / "metrics.jsonl"
    if ranks.is_main:
        work_dir.mkdir(parents=True, exist_ok=True)
        metrics_path.unlink(missing_ok=True)
    frames = FrameView(train_set, train_indices)
    epochs = detector.config.epochs
    wanted = {int(e) for e in eval_epochs} | {epochs}
    rows: list[dict[str, Any]] = []
    clock = {"train": 0.0, "since": time.perf_counter()}

    def on_epoch_end(epoch: int, losses: list[dict[str, float]]) -> None:
        if not ranks.is_main:
            with distributed.waiting_for_rank0(ranks.rank, "writes and evaluates the epoch"):
                ranks.barrier()
            return
        main_epoch_end(epoch, losses)
        ranks.barrier()

    def main_epoch_end(epoch: int, losses: list[dict[str, float]]) -> None:
        clock["train"] += time.perf_counter() - clock["since"]
        detector.save(work_dir / "latest.pth")
        row: dict[str, Any] = {"epoch": epoch + 1, "train_minutes": clock["train"] / 60,
                               "iterations": len(losses),
                               "loss": float(np.mean([r["loss"] for r in losses])) if losses else None}
        if test_set is not None and epoch + 1 in wanted:
            t = time.perf_counter()
            preds = predict_frames(detector, test_set, eval_indices, progress=progress, desc="evaluate")
            row.update(evaluate_frames(test_set, preds, eval_indices, **(eval_options or {})))
            row["eval_seconds"] = time.perf_counter() - t
            log(f"epoch {epoch + 1}/{epochs}: train {row['train_minutes']:.2f} min, loss {row['loss']:.3f}, "
                f"test mAP@0.5 {row['mAP50']}")
        else:
            log(f"epoch {epoch + 1}/{epochs}: train {row['train_minutes']:.2f} min, loss {row['loss']:.3f}")
        append_jsonl(metrics_path, row)
        rows.append(row)
        clock["since"] = time.perf_counter()

    detector.train(frames, progress=progress, on_epoch_end=on_epoch_end)
    if ranks.is_main:
        detector.save(work_dir / "final.pth")
    ranks.barrier()
    return rows
