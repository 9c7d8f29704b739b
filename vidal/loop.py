"""The active-learning experiment (design.md 1, 5.4; thesis 2.3, 2.5), as a sequence of small steps.

One cycle (:func:`run_cycle`), ``for cycle in range(cycles + 1)``, each step a plain function:

1. :func:`train_cycle`: train the detector on the labeled frames: cycle 0 from the config's start
   weights (e.g. ``detector.weights`` = COCO), every later cycle fine-tunes the model of the
   previous cycle (thesis 2.5.1; ``al.train_from="start"`` restarts from the start weights instead);
2. :func:`evaluate_cycle`: evaluate it on the test split (thesis 2.5.1: NMS 0.5, scores >= 0.5,
   VOC AP@0.5; :func:`vidal.training.evaluate_thesis_frames`);
3. unless it is the last cycle, :func:`acquire`: :func:`predict_pool` (when a need is served from
   pool predictions, :func:`vidal.training.predict_frames`), :func:`build_context` (the context
   fields the acquisition declares it needs, each filled by its provider in
   :data:`CONTEXT_PROVIDERS`), :func:`score_candidates`, :func:`select_frames` (budget, temporal
   exclusion, per-video sampling: :mod:`vidal.selection`) and :func:`real_errors`, giving a
   :class:`Selection`; then :func:`reveal`: the :class:`Oracle` labels the selected frames (today
   :class:`SimulatedOracle`, the ground truth of the train split) and the next ALState is saved.

:class:`WorkDir` owns the files: paths, atomic writes, reads, and the "is this step done" tests
that resume uses. Cycle ``c`` trains on ``initial + c * budget`` frames; ``al.cycles`` is the number
of selections (thesis SYNTHIA-AL: 2 % initial + 5 x 2 % = 12 %, six models). ``al.reference=True``
also trains once on the whole train split (the "All data" row of thesis Table 2.2). Words: the
*train split* is the dataset the frames are selected from; the *candidates* of a selection are its
unlabeled frames.

Config sections (unknown keys are errors):

- ``al = dict(initial=0.02, budget=0.02, cycles=5, k=1, per_video=True, train_from="previous",
  reference=False)``: ``initial`` / ``budget`` a fraction (float) of the train split's frames or a
  count (int); ``k`` the temporal exclusion radius, ``per_video`` the per-video round robin (both for
  every method, thesis 2.6.1; the plain ``random`` acquisition overrides them with k=0,
  per_video=False); ``train_from`` ``"previous"`` or ``"start"``; ``initial_schedule`` (default
  None) overrides ``epochs`` / ``lr`` / ``milestones`` / ``gamma`` of the schedule for cycle 0,
  which trains from the start weights on the small initial set. ``oracle`` ``"simulated"`` (the
  pool's ground truth) or ``"human"`` (annotation jobs and imported labels, :mod:`vidal.human`);
  ``cold_start`` (human only) ``"random"`` (Random+R) or ``"acquisition"`` (the acquisition on the
  start-weights model) chooses the first job. ``pool_subsample`` (None) a fraction F: each cycle
  scores a seeded random F of the unlabeled frames (whole video segments for TC;
  :mod:`vidal.subsample`). ``budget_unit`` (default ``"frames"``) ``"boxes"``: ``budget`` counts
  ground-truth boxes (a frame costs its boxes, at least 1; a fraction is of the pool's boxes) and a
  selection buys frames until it is spent (simulated oracle only); the rows carry
  ``labeled_boxes`` either way.
- ``acquisition = dict(name="entropy", selector=None, **kwargs)``: a name of
  :data:`vidal.registry.ACQUISITIONS`, the other keys go to its constructor (strict);
  ``selector = dict(name="kcenter", **options)`` picks the batch from the scores
  (:data:`vidal.registry.SELECTORS`, :mod:`vidal.selectors`; default ``topk``).
- ``tracker = dict(name="flow", **options)``: used when the acquisition needs tracks; built once per
  run with ``TRACKERS.get(name).for_dataset(train_split, **options)`` (``reset()`` each cycle if it
  has one).
- ``dataset``, ``detector``, ``schedule``, ``evaluation``: :mod:`vidal.build`.

The work dir's files: :mod:`vidal.workdir`.

Shared cycle 0 (``only="cycle0"`` / ``cycle0_from``, used by tools/run_grid.py): cycle 0 does not
depend on the acquisition (the initial set, the start weights, the training and the evaluation come
from ``(seed, config without acquisition / tracker)``), so a grid trains it once per seed in an
``only="cycle0"`` run and every method's run copies its model, ``train.json``, ``eval.json`` and
``pool_predictions.npz`` (the cycle-0 model's predictions on the pool, made once per seed) after
checking that ``cycle0.json`` matches its own config, seed and threads. The run then continues
exactly as a resumed run. An acquisition needing ``epoch_predictions`` trains its cycle 0 itself
(they are made during the training).

Determinism and resume: the RNG of every step comes from ``(seed, cycle, step)``
(:func:`vidal.selection.step_rng`), never from a stream consumed in sequence, and every step
writes its result before the next starts; ``resume=True`` skips the steps whose files exist and
redoes the interrupted one, so an interrupted and resumed run ends with the same selections and
metrics as an uninterrupted one (with the same number of threads).

Several processes (``torchrun ... tools/run_al.py --launcher ddp``, :mod:`vidal.distributed`):
rank 0 runs the loop and is the only writer; the other ranks run :func:`follow` and join the two
collective steps rank 0 sends them (:meth:`Experiment.command_followers`): training
(:func:`train_model`, each rank its share of every global batch) and pool prediction
(:func:`predict_pool_sharded`, each rank whole videos, written by rank 0 as per-video shards);
with ``al.oracle="human"`` rank 0 first sends the imported labels it holds. Every rank loads its
start weights before a barrier (rank 0 then deletes the previous cycle's checkpoint), and a rank
waiting for rank 0's next step past ``--dist-timeout`` stops in one line.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from vidal import build, distributed, human, subsample
from vidal.config import ConfigError, check_keys, dump, section
from vidal.locking import FolderLock
from vidal.provenance import git_commit, versions
from vidal.selection import (
    ALState,
    budget_count,
    check_budget,
    initial_labeled,
    frame_costs,
    step_int_seed,
    step_rng,
)
from vidal.training import FrameView, evaluate_thesis_frames, predict_frames, spread_indices
from vidal.workdir import (
    CYCLE0_FILE,
    REFERENCE,
    ExperimentError,
    Selection,
    WorkDir,
    atomic_write,
    read_json,
    read_work_file,
    write_json,
)

AL_DEFAULTS: dict[str, Any] = {"initial": 0.02, "budget": 0.02, "cycles": 5, "k": 1, "per_video": True,
                               "train_from": "previous", "reference": False, "initial_schedule": None,
                               "oracle": "simulated", "cold_start": "random", "pool_subsample": None,
                               "budget_unit": "frames"}
#: ``al.budget_unit``: what ``al.budget`` counts (issue 17): frames (the thesis) or the boxes of the
#: selected frames (a frame costs its ground-truth boxes, at least 1: vidal.selection.frame_costs)
BUDGET_UNITS = ("frames", "boxes")
#: Keys of ``al.initial_schedule``: the schedule of cycle 0 (from the start weights), when it should
#: differ from the fine-tuning cycles' (e.g. more epochs on the small initial set)
INITIAL_SCHEDULE_KEYS = ("epochs", "lr", "milestones", "gamma")
TRAIN_FROM = ("previous", "start")
CYCLE0_FORMAT = "vidal-shared-cycle0-v1"
#: ``Experiment(only=...)``: None runs the cycles (and the reference when ``al.reference``);
#: "cycle0" trains and evaluates cycle 0 for sharing; "reference" trains only the all-data model
ONLY = (None, "cycle0", "reference")



class Oracle(Protocol):
    """Who reveals labels: ``reveal(frames)`` returns the ground truth of each frame (train-split
    flat indices), as :meth:`vidal.data.VideoDataset.ground_truth`."""

    def reveal(self, frames: np.ndarray) -> list[dict]: ...


class SimulatedOracle:
    """The simulated annotator of an AL benchmark: the train split's own ground truth (which the
    training then reads from the split through :class:`vidal.training.FrameView`)."""

    def __init__(self, dataset):
        self.dataset = dataset

    def reveal(self, frames: np.ndarray) -> list[dict]:
        return [self.dataset.ground_truth(int(i)) for i in frames]


# ----------------------------------------------------------------------------- config sections


@dataclasses.dataclass
class ALProtocol:
    """The ``al`` section resolved against the pool size."""

    initial: int
    budget: int
    cycles: int
    k: int
    per_video: bool
    train_from: str
    reference: bool
    budget_unit: str = "frames"


def al_section(cfg: dict) -> dict[str, Any]:
    where = build.config_where(cfg)
    al = section(cfg, "al")
    check_keys(al, AL_DEFAULTS, f"{where}: al")
    al = {**AL_DEFAULTS, **al}
    if al["train_from"] not in TRAIN_FROM:
        raise ConfigError(f"{where}: al.train_from must be one of {', '.join(TRAIN_FROM)}, got {al['train_from']!r}")
    for key in ("cycles", "k"):
        if isinstance(al[key], bool) or not isinstance(al[key], int) or al[key] < 0:
            raise ConfigError(f"{where}: al.{key} must be an int >= 0, got {al[key]!r}")
    if al["budget_unit"] not in BUDGET_UNITS:
        raise ConfigError(f"{where}: al.budget_unit must be one of {', '.join(BUDGET_UNITS)}, "
                          f"got {al['budget_unit']!r}")
    for key in ("per_video", "reference"):
        if not isinstance(al[key], bool):
            raise ConfigError(f"{where}: al.{key} must be True or False, got {al[key]!r}")
    al["initial_schedule"] = _initial_schedule(al["initial_schedule"], where)
    al["pool_subsample"] = subsample.check_fraction(al["pool_subsample"], where)
    return al


def _initial_schedule(value: Any, where: str) -> dict[str, Any]:
    """``al.initial_schedule`` checked: a dict of :data:`INITIAL_SCHEDULE_KEYS` (None: empty)."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: al.initial_schedule must be a dict like dict(epochs=20, milestones=(16,)), "
                          f"got {value!r}")
    check_keys(value, INITIAL_SCHEDULE_KEYS, f"{where}: al.initial_schedule")
    out = dict(value)
    if "epochs" in out and (isinstance(out["epochs"], bool) or not isinstance(out["epochs"], int) or out["epochs"] < 1):
        raise ConfigError(f"{where}: al.initial_schedule.epochs must be an int >= 1, got {out['epochs']!r}")
    for key in ("lr", "gamma"):
        if key in out and (isinstance(out[key], bool) or not isinstance(out[key], (int, float)) or out[key] <= 0):
            raise ConfigError(f"{where}: al.initial_schedule.{key} must be a number > 0, got {out[key]!r}")
    if "milestones" in out:
        m = out["milestones"]
        if not isinstance(m, (list, tuple)) or not all(isinstance(e, int) and not isinstance(e, bool) and e >= 1
                                                        for e in m):
            raise ConfigError(f"{where}: al.initial_schedule.milestones must be a tuple of epochs >= 1, got {m!r}")
        out["milestones"] = tuple(m)
    return out


def resolve_protocol(cfg: dict, n_frames: int, total_cost: float | None = None) -> ALProtocol:
    """The ``al`` section against the pool: ``initial`` in frames; ``budget`` in frames, or with
    ``al.budget_unit="boxes"`` in boxes (a fraction: of ``total_cost``, the cost of the whole pool)."""
    al = al_section(cfg)
    where = build.config_where(cfg)
    try:
        initial = budget_count(al["initial"], n_frames, what="al.initial")
        if al["budget_unit"] == "frames":
            budget = budget_count(al["budget"], n_frames, what="al.budget")
            check_budget(n_frames, initial, budget, al["cycles"])
        else:
            total = int(round(total_cost if total_cost is not None else n_frames))
            budget = budget_count(al["budget"], total, what="al.budget (boxes)")
            if budget * al["cycles"] > total:
                raise ValueError(f"the experiment buys {al['cycles']} x {budget} boxes, more than the {total} of "
                                 f"the pool; lower al.budget or al.cycles")
    except ValueError as e:
        raise ConfigError(f"{where}: {e}") from None
    if initial < 1:
        raise ConfigError(f"{where}: al.initial must label at least one frame")
    return ALProtocol(initial, budget, al["cycles"], al["k"], al["per_video"], al["train_from"], al["reference"],
                      al["budget_unit"])


# ----------------------------------------------------------------------------- the acquisition context


@dataclasses.dataclass(frozen=True)
class Provider:
    """How the loop fills the context fields of one need (:data:`vidal.acquisition.base.NEEDS`).

    ``fields(exp, predictions)`` returns the :class:`~vidal.acquisition.AcquisitionContext` fields to
    set (``predictions``: the cycle's pool predictions, None when no need asked for them);
    ``uses_pool_predictions``: the loop predicts the whole train split first (and reuses these
    predictions for the real errors of the selected frames).
    """

    fields: Callable[[Experiment, list | None], dict[str, Any]]
    uses_pool_predictions: bool = False


def _provide_tracker(exp: Experiment, predictions: list | None) -> dict[str, Any]:
    tracker = exp.tracker
    if hasattr(tracker, "reset"):  # one tracker per run (its flow cache is read once); fresh state per cycle
        tracker.reset()
    return {"tracker": tracker}


def pool_embeddings(exp: Experiment, c: int, predictions: list) -> tuple[np.ndarray, list[np.ndarray], float]:
    """``(frame embeddings [N, D], RoI features per frame [n_i, R], seconds)`` of cycle ``c``'s model
    on the train split (:func:`vidal.detection.embeddings.embed`, the RoI features at the pool
    predictions' boxes); cached in ``cycle_XXX/pool_embeddings.npz`` (read back when present)."""
    from tqdm import tqdm

    from vidal.detection.embeddings import embed, embeddings_from_arrays, embeddings_to_arrays

    path = exp.wd.path(c, "pool_embeddings.npz")
    if path.is_file():
        def load(p: Path):
            with np.load(p, allow_pickle=False) as z:
                frame, rois = embeddings_from_arrays(z)
                return frame, rois, float(z["time_s"])

        frame, rois, seconds = read_work_file(path, load)
        if len(frame) == len(exp.train_set):
            return frame, rois, seconds
    det = exp.detector(c)
    chunk = exp.predict_chunk(det)
    t0 = time.perf_counter()
    frames, rois = [], []
    with tqdm(total=len(exp.train_set), desc="embed pool", unit="frame", disable=not exp.progress, leave=False) as bar:
        for s in range(0, len(exp.train_set), chunk):
            idx = range(s, min(s + chunk, len(exp.train_set)))
            f, r = embed(det, [exp.train_set.image(i) for i in idx], [predictions[i].boxes for i in idx])
            frames.append(f)
            rois += r
            bar.update(len(idx))
    frame = np.concatenate(frames) if frames else np.zeros((0, 0), np.float32)
    seconds = _seconds_since(t0)
    arrays = embeddings_to_arrays(frame, rois)
    atomic_write(path, lambda f: np.savez(f, time_s=np.float64(seconds), **arrays))
    return frame, [r.astype(np.float32) for r in embeddings_from_arrays(arrays)[1]], seconds


def _provide_embeddings(exp: Experiment, predictions: list | None) -> dict[str, Any]:
    frame, rois, seconds = pool_embeddings(exp, exp.context_cycle, predictions)
    exp.extra_times["embed"] = seconds
    return {"embeddings": frame, "roi_embeddings": rois}


#: ``{need: provider}``: a new need of an acquisition is one entry here (and its name in NEEDS).
#: "tracks" also predicts the pool: the tracks link the detections of neighbouring frames.
#: A provider reads the cycle being selected as ``exp.context_cycle``; seconds it spends on the
#: model go to ``exp.extra_times`` (added to the cycle's prediction time).
CONTEXT_PROVIDERS: dict[str, Provider] = {
    "predictions": Provider(lambda exp, predictions: {"predictions": predictions}, uses_pool_predictions=True),
    "tracks": Provider(_provide_tracker, uses_pool_predictions=True),
    "ground_truth": Provider(lambda exp, predictions: {"ground_truth": exp.train_set.ground_truth}),
    "embeddings": Provider(_provide_embeddings, uses_pool_predictions=True),
}


def build_context(exp: Experiment, c: int, state: ALState, predictions: list | None):
    """The :class:`~vidal.acquisition.AcquisitionContext` of cycle ``c``: the fields every
    acquisition gets, and those of its needs from :data:`CONTEXT_PROVIDERS`."""
    from vidal.acquisition import AcquisitionContext

    # al.pool_subsample: a seeded subset of the unlabeled pool (whole segments when tracks are needed)
    candidates = subsample.subsample(state.unlabeled, exp.pool_subsample, step_rng(exp.seed, c, "acquire").spawn(1)[0],
                                     video_of_frames=exp.video_of_frames, segments="tracks" in exp.needs)
    ctx = AcquisitionContext(
        dataset=exp.train_set, candidates=candidates, labeled=state.labeled_mask, num_classes=exp.num_classes,
        class_names=exp.classes, cycle=c, rng=step_rng(exp.seed, c, "acquire"),
        labeled_class_counts=labeled_class_counts(exp, state),
        evaluation={k: exp.eval_options[k] for k in ("score_threshold", "nms_iou", "matching")})
    exp.context_cycle = c
    exp.extra_times = {}
    for need in sorted(exp.needs, key=list(CONTEXT_PROVIDERS).index):
        for name, value in CONTEXT_PROVIDERS[need].fields(exp, predictions).items():
            setattr(ctx, name, value)
    return ctx


def labeled_class_counts(exp: Experiment, state: ALState) -> np.ndarray:
    """int64 ``[C + 1]``: boxes per class id in the labeled frames."""
    counts = np.zeros(exp.num_classes + 1, np.int64)
    for i in state.labeled:
        labels = exp.train_set.ground_truth(int(i))["labels"]
        counts += np.bincount(labels, minlength=exp.num_classes + 1)[:exp.num_classes + 1]
    return counts


# ----------------------------------------------------------------------------- the steps of a cycle


def _seconds_since(t0: float) -> float:
    return time.perf_counter() - t0


def train_model(exp: Experiment, frames: Sequence[int], cycle: int, step: int | str, *,
                start: Path | None, kind: str) -> dict:
    """Train a fresh detector (from ``start`` when given, else the config's start weights) on
    ``frames`` of the train split; writes ``model.pt`` and ``train.json`` in ``step``'s directory and
    returns the training info. ``kind`` ("train" / "reference") names the RNG step.

    In a ``--launcher ddp`` run rank 0 sends this step to the other ranks (:func:`follow`), every
    rank trains its share of each global batch, and only rank 0 writes."""
    if exp.human:  # the labels imported so far, as rank 0 holds them (it re-reads them at each reveal)
        exp.command_followers("labels", labels=exp.train_set.labels)
    exp.command_followers("train", frames=np.asarray(frames), cycle=cycle, step=step, start=start, kind=kind)
    det = exp.new_detector(cycle, kind)
    if start is not None:
        det.load_weights(start)
    # every rank holds its start weights before rank 0 goes on: rank 0 deletes the previous cycle's
    # checkpoint once its own training is done (run_cycle), which a backend without a collective at
    # the start of training (the test double) could reach before a slower rank has read it
    exp.ranks.barrier()
    exp.seed_torch(cycle, kind)
    t0 = time.perf_counter()
    overrides = exp.initial_schedule if (cycle == 0 and kind == "train") else {}
    hook = None
    if kind == "train" and "epoch_predictions" in exp.needs and exp.ranks.is_main:
        # label dispersion: the pool predicted at the end of the last epochs (by rank 0 alone)
        hook = EpochPredictions(exp, det, overrides)
    if hook is not None:
        overrides = {**overrides, "on_epoch_end": hook}
    history = det.train(FrameView(exp.train_set, frames), progress=exp.progress, **overrides)
    seconds = _seconds_since(t0)
    if not exp.ranks.is_main:
        exp.remember_detector(cycle if kind == "train" else None, det)
        return {}
    if hook is not None:
        hook.write(exp.wd.path(step, "epoch_predictions.npz"))
        seconds -= hook.seconds
    det.save(exp.wd.step_dir(step, make=True) / "model.pt")
    losses = [h["loss"] for h in history]
    info = {"time_s": seconds, "frames": len(frames), "iterations": len(history),
            "loss_first": losses[0] if losses else None, "loss_last": losses[-1] if losses else None,
            "start": str(start) if start else "config"}
    exp.wd.write(step, "train.json", info)
    exp.remember_detector(cycle if kind == "train" else None, det)
    return info


EPOCH_PREDICTIONS_FORMAT = "vidal-epoch-predictions-v1"


class EpochPredictions:
    """The training's ``on_epoch_end`` hook of the need ``epoch_predictions`` (label dispersion):
    predicts the whole train split at the end of each of the ``checkpoints`` epochs before the last
    one (the acquisition's ``checkpoints``; fewer when the schedule is shorter) and writes them,
    with the seconds they took, to ``cycle_XXX/epoch_predictions.npz`` (plain arrays, one
    :func:`vidal.detection.base.predictions_to_arrays` set per checkpoint as ``e<j>_<array>``)."""

    def __init__(self, exp: Experiment, det, overrides: dict):
        self.exp, self.det = exp, det
        epochs = int(overrides.get("epochs") or getattr(det.config, "epochs", 1))
        e = int(getattr(exp.acquisition, "checkpoints", 3))
        self.epochs = list(range(max(0, epochs - 1 - e), epochs - 1))
        self.sets: list[list] = []
        self.seconds = 0.0

    def __call__(self, epoch: int, rows) -> None:
        if epoch not in self.epochs:
            return
        t0 = time.perf_counter()
        self.sets.append(predict_frames(self.det, self.exp.train_set, None, batch_size=self.exp.predict_chunk(self.det),
                                        progress=self.exp.progress, desc=f"predict pool (epoch {epoch + 1})"))
        self.seconds += _seconds_since(t0)

    def write(self, path: Path) -> None:
        from vidal.detection.base import predictions_to_arrays

        arrays = {f"e{j}_{k}": v for j, preds in enumerate(self.sets) for k, v in predictions_to_arrays(preds).items()}
        atomic_write(path, lambda f: np.savez(f, format=EPOCH_PREDICTIONS_FORMAT, time_s=np.float64(self.seconds),
                                              epochs=np.array(self.epochs[-len(self.sets):] if self.sets else [],
                                                              np.int64), **arrays))


def read_epoch_predictions(path: Path, n_frames: int) -> tuple[list[list], float]:
    """``(prediction sets, oldest first; seconds)`` of :class:`EpochPredictions`' file."""
    from vidal.detection.base import PREDICTION_ARRAYS, predictions_from_arrays

    def load(p: Path):
        with np.load(p, allow_pickle=False) as z:
            if str(z["format"]) != EPOCH_PREDICTIONS_FORMAT:
                raise ValueError(f"not {EPOCH_PREDICTIONS_FORMAT}")
            sets = [predictions_from_arrays({k: z[f"e{j}_{k}"] for k in PREDICTION_ARRAYS})
                    for j in range(len(z["epochs"]))]
            if any(len(s) != n_frames for s in sets):
                raise ValueError(f"prediction sets do not cover the {n_frames} pool frames")
            return sets, float(z["time_s"])

    return read_work_file(path, load)


def _provide_epoch_predictions(exp: Experiment, predictions: list | None) -> dict[str, Any]:
    path = exp.wd.path(exp.context_cycle, "epoch_predictions.npz")
    if not path.is_file():
        raise ExperimentError(f"{path} missing: cycle {exp.context_cycle} was trained without the epoch predictions "
                              f"this acquisition needs; delete {path.parent} and rerun with --resume to train it again")
    sets, seconds = read_epoch_predictions(path, len(exp.train_set))
    exp.extra_times["epoch_predictions"] = seconds
    return {"epoch_predictions": sets}


#: label dispersion's need: the epoch predictions the training wrote (:class:`EpochPredictions`)
CONTEXT_PROVIDERS["epoch_predictions"] = Provider(_provide_epoch_predictions)


def train_cycle(exp: Experiment, c: int, labeled: np.ndarray) -> dict:
    """Step 1: train cycle ``c``'s model (fine-tuning the previous one unless ``train_from="start"``)."""
    start = None
    if c > 0 and exp.protocol.train_from == "previous":
        start = exp.wd.path(c - 1, "model.pt")
    exp.log(f"cycle {c}: train on {len(labeled)} frames "
            f"({'fine-tune cycle ' + str(c - 1) if start else 'from the config start weights'})")
    info = train_model(exp, labeled, c, c, start=start, kind="train")
    exp.log(f"cycle {c}: trained in {info['time_s']:.1f} s")
    return info


def evaluate_model(exp: Experiment, det) -> dict:
    """Thesis metrics of ``det`` on the test split (``evaluation.max_frames`` frames spread over it):
    ``mAP``, ``AP``, ``per_class``, ``num_frames``, ``time_s`` (what ``eval.json`` holds)."""
    t0 = time.perf_counter()
    spread = spread_indices(len(exp.test_set), exp.eval_options["max_frames"])
    frames = [int(i) for i in (range(len(exp.test_set)) if spread is None else spread)]
    preds = predict_frames(det, exp.test_set, frames, batch_size=exp.predict_chunk(det), progress=exp.progress,
                           desc="evaluate")
    gts = [exp.test_set.ground_truth(i) for i in frames]
    res = evaluate_thesis_frames(exp.test_set, preds, frames, ground_truth=gts, **{
        k: exp.eval_options[k] for k in ("score_threshold", "nms_iou", "matching")})
    every = evaluate_thesis_frames(exp.test_set, preds, frames, ground_truth=gts, score_threshold=0.0,
                                   nms_iou=exp.eval_options["nms_iou"], matching=exp.eval_options["matching"])
    return {"mAP": res["mAP"], "AP": res["AP"], "per_class": res["per_class"], "num_frames": len(frames),
            "mAP_all_scores": every["mAP"], "AP_all_scores": every["AP"], "time_s": _seconds_since(t0)}


def evaluate_cycle(exp: Experiment, c: int, n_labeled: int) -> dict:
    """Step 2: cycle ``c``'s ``eval.json`` (evaluated now unless done)."""
    if not exp.wd.evaluated(c):
        n_eval = min(len(exp.test_set), exp.eval_options["max_frames"] or len(exp.test_set))
        exp.log(f"cycle {c}: evaluate on {n_eval} of the {len(exp.test_set)} test frames")
        exp.wd.write(c, "eval.json", evaluate_model(exp, exp.detector(c)))
    ev = exp.wd.read(c, "eval.json")
    exp.log(f"cycle {c}: mAP@0.5 {ev['mAP'] if ev['mAP'] is not None else float('nan'):.4f} "
            f"with {n_labeled} labeled frames")
    return ev


def predict_pool(exp: Experiment, c: int, det) -> tuple[list | None, float]:
    """Step 3a: ``(predictions on every train-split frame, seconds)`` when a need uses them (read
    back if this cycle's are on disk), else ``(None, 0.0)``."""
    if not any(CONTEXT_PROVIDERS[n].uses_pool_predictions for n in exp.needs):
        return None, 0.0
    return predict_pool_always(exp, c, det)


def predict_pool_always(exp: Experiment, c: int, det) -> tuple[list, float]:
    """Cycle ``c``'s predictions on every train-split frame and the seconds they took (read back
    if ``pool_predictions.npz`` or complete per-video shards are on disk, e.g. copied from a shared
    cycle 0), written otherwise (as shards when ``exp.pool_shards``: :func:`predict_pool_sharded`)."""
    done = exp.wd.stored_pool_predictions(c, exp.video_of_frames)
    if done is not None:
        return done
    if exp.pool_shards:
        return predict_pool_sharded(exp, c, det, exp.wd.pool_shards(c, exp.video_of_frames))
    exp.log(f"cycle {c}: predict on the pool ({len(exp.train_set)} frames)")
    t0 = time.perf_counter()
    predictions = predict_frames(det, exp.train_set, None, batch_size=exp.predict_chunk(det), progress=exp.progress,
                                 desc="predict pool")
    seconds = _seconds_since(t0)
    exp.wd.write_pool_predictions(c, predictions, seconds)
    return predictions, seconds


def predict_pool_sharded(exp: Experiment, c: int, det, shards, todo: Sequence[int] | None = None):
    """Cycle ``c``'s pool predictions as per-video shards (:mod:`vidal.pool_shards`), the videos
    shared among the ranks (:func:`vidal.distributed.shard_videos`: whole videos, so a frame's
    temporal neighbours are predicted together). In rounds, each rank predicts one of its videos
    and rank 0 gathers and writes them; videos whose shard is complete (a resumed run) are not
    predicted again. Rank 0 sends the list ``todo`` to the other ranks (:func:`follow`) and returns
    ``(ShardedPredictions, seconds)``; the other ranks return None."""
    ranks = exp.ranks
    if ranks.is_main:
        todo = shards.missing()
        exp.log(f"cycle {c}: predict on the pool ({len(exp.train_set)} frames, {len(todo)} of {shards.n_videos} "
                f"videos to do, {ranks.world_size} process(es))")
        exp.command_followers("predict_pool", c=c, todo=todo)
    t0 = time.perf_counter()
    shares = distributed.shard_videos([len(shards.frames_of[v]) for v in todo], ranks.world_size)
    mine = [todo[k] for k in shares[ranks.rank]]
    for k in range(max(len(s) for s in shares)):
        out = None
        if k < len(mine):
            t = time.perf_counter()
            preds = predict_frames(det, exp.train_set, shards.frames_of[mine[k]], batch_size=exp.predict_chunk(det),
                                   progress=False)
            out = (mine[k], preds, _seconds_since(t))
        for got in ranks.gather(out) or []:
            if got is not None:
                shards.write(*got)
    if not ranks.is_main:
        return None
    seconds = _seconds_since(t0)
    shards.finish(seconds, ranks.world_size)
    return shards.predictions(), seconds


def score_candidates(exp: Experiment, ctx) -> tuple[np.ndarray, float]:
    """Step 3c: ``(float64 scores of ctx.candidates, seconds)``, checked."""
    t0 = time.perf_counter()
    scores = np.asarray(exp.acquisition.score(ctx), np.float64)
    if scores.shape != ctx.candidates.shape or not np.all(np.isfinite(scores)):
        raise RuntimeError(f"acquisition {exp.acquisition_name} returned scores of shape {scores.shape} "
                           f"(finite: {bool(np.all(np.isfinite(scores)))}) for {len(ctx.candidates)} candidates")
    return scores, _seconds_since(t0)


def select_frames(exp: Experiment, c: int, state: ALState, candidates: np.ndarray,
                  scores: np.ndarray) -> tuple[np.ndarray, float]:
    """Step 3d: ``(selected frames, seconds)`` under the budget, temporal exclusion and per-video
    rules, by the acquisition's selector (``acquisition.selector``, :mod:`vidal.selectors`; ``topk``
    is :func:`vidal.selection.select`), in the protocol's budget unit."""
    t0 = time.perf_counter()
    selected = exp.selector.select(scores, candidates, exp.protocol.budget, state, exp.video_of_frames, k=exp.k,
                                   per_video=exp.per_video, rng=step_rng(exp.seed, c, "select"),
                                   cost=exp.frame_costs(), ctx=exp.context)
    seconds = _seconds_since(t0)
    if len(selected) < exp.protocol.budget:
        exp.log(f"cycle {c}: warning: only {len(selected)} of {exp.protocol.budget} frames could be "
                f"selected (temporal exclusion k={exp.k})")
    return selected, seconds


def real_errors(exp: Experiment, det, selected: np.ndarray, predictions: list | None) -> tuple[np.ndarray, float]:
    """Step 3e: int ``[m, 2]`` real (FP, FN) of the selected frames, counted AFTER the selection
    (never seen by the acquisition), and the seconds spent predicting them (when the pool was not)."""
    from vidal.acquisition.oracle import errors_of_frames

    if exp.human:  # no ground truth to count them against: unknown
        return np.full((len(selected), 2), np.nan), 0.0
    t0 = time.perf_counter()
    if predictions is not None:
        sel_preds = {int(i): predictions[int(i)] for i in selected}
    else:
        preds = predict_frames(det, exp.train_set, selected, batch_size=exp.predict_chunk(det),
                               progress=exp.progress, desc="predict selected")
        sel_preds = dict(zip((int(i) for i in selected), preds))
    seconds = _seconds_since(t0)
    errors = errors_of_frames(selected, sel_preds, exp.train_set.ground_truth, exp.num_classes,
                              **{k: exp.eval_options[k] for k in ("score_threshold", "nms_iou", "matching")})
    return errors, seconds


def candidate_logs(log: dict[str, Any], candidates: np.ndarray) -> dict[str, np.ndarray]:
    """The numeric per-candidate arrays of an acquisition's ``ctx.log`` (the rest is not stored)."""
    out = {}
    for key, value in log.items():
        arr = np.asarray(value)
        if arr.shape[:1] == candidates.shape and arr.dtype.kind in "biuf":
            out[key] = arr
    return out


def acquire(exp: Experiment, c: int, state: ALState) -> Selection:
    """Step 3: predict the pool (if needed), build the context, score, select, count the real
    errors; writes and returns cycle ``c``'s :class:`Selection`."""
    det = exp.detector(c)
    # global RNGs too (an acquisition or tracker may use them): a resumed step reproduces
    exp.seed_torch(c, "acquire")
    np.random.seed(step_int_seed(exp.seed, c, "acquire"))
    predictions, t_predict = predict_pool(exp, c, det)
    exp.log(f"cycle {c}: acquire ({exp.acquisition_name})")
    if os.environ.get("VIDAL_FAIL_ACQUISITION") == exp.acquisition_name:  # test hook: a run that fails
        raise RuntimeError(f"VIDAL_FAIL_ACQUISITION={exp.acquisition_name}")
    ctx = build_context(exp, c, state, predictions)
    exp.context = ctx  # the selector reads it (embeddings)
    scores, t_acquire = score_candidates(exp, ctx)
    selected, t_select = select_frames(exp, c, state, ctx.candidates, scores)
    errors, t_more = real_errors(exp, det, selected, predictions)
    pos = np.searchsorted(ctx.candidates, selected)
    t_model = t_predict + t_more + sum(exp.extra_times.values())
    sel = Selection(ctx.candidates, scores, selected, scores[pos], errors[:, 0], errors[:, 1], exp.protocol.budget,
                    np.array([t_model, t_acquire, t_select]), candidate_logs(ctx.log, ctx.candidates))
    exp.wd.write_selection(c, sel)
    return sel


def reveal(exp: Experiment, state: ALState, sel: Selection, c: int) -> ALState:
    """Step 4: the oracle labels the selected frames; the ALState of cycle ``c + 1``."""
    labels = exp.oracle.reveal(sel.selected)
    if len(labels) != len(sel.selected):
        raise RuntimeError(f"the oracle revealed {len(labels)} labels for {len(sel.selected)} frames")
    nxt = ALState(len(exp.train_set))
    nxt.load_state_dict(state.state_dict())
    # a human oracle returns None for a frame given up on (it stays in the unlabeled pool)
    nxt.reveal(sel.selected[np.array([g is not None for g in labels], bool)], c + 1)
    exp.log(f"cycle {c}: selected {len(sel.selected)} frames "
            f"(real FP mean {sel.real_fp.mean() if len(sel.real_fp) else float('nan'):.2f})")
    return nxt


def cycle_row(exp: Experiment, c: int, state: ALState, ev: dict, sel: Selection | None) -> dict:
    """The metrics row of cycle ``c`` (``sel`` None in the last cycle)."""
    train = exp.wd.read(c, "train.json")
    n = int(state.labeled_mask.sum())
    row = {"cycle": c, "acquisition": exp.acquisition_name, "seed": exp.seed,
           "labeled": n, "labeled_boxes": int(exp.box_counts()[state.labeled].sum()),
           "labeled_fraction": n / len(exp.train_set), "pool_frames": len(exp.train_set),
           "mAP": ev["mAP"], "AP": ev["AP"],
           "mAP_all_scores": ev.get("mAP_all_scores"), "AP_all_scores": ev.get("AP_all_scores"),
           "time_train_s": train["time_s"], "time_evaluate_s": ev["time_s"],
           "time_predict_s": None, "time_acquire_s": None, "time_select_s": None,
           "budget": None, "selected": None, "shortfall": None,
           "selected_real_fp_mean": None, "selected_real_fn_mean": None, "selected_score_mean": None,
           "log": {}}
    if sel is not None:
        row.update(sel.row())
        costs = exp.frame_costs()
        if costs is not None:  # al.budget_unit="boxes": budget and shortfall in boxes
            spent = float(costs[sel.selected].sum()) if len(sel.selected) else 0.0
            row.update(selected_cost=spent, shortfall=max(0.0, sel.budget - spent))
    return row


def run_cycle(exp: Experiment, c: int) -> bool:
    """One cycle, resuming at its first unfinished step; False when an ``only="cycle0"`` run is done."""
    wd = exp.wd
    wd.cycle_dir(c)
    state = wd.load_state(c, len(exp.train_set))
    if wd.finished(c):
        return True
    if c == 0 and exp.cycle0_from is not None and not wd.path(0, "train.json").is_file() \
            and "epoch_predictions" not in exp.needs:  # those come from training: cycle 0 is trained here
        exp.import_cycle0()
    if not wd.trained(c):
        train_cycle(exp, c, state.labeled)
    if c > 0:  # the previous cycle's checkpoint is no longer needed
        wd.path(c - 1, "model.pt").unlink(missing_ok=True)
    ev = evaluate_cycle(exp, c, len(state.labeled))
    if exp.only == "cycle0":  # the pool predictions too: every scoring method of the seed reads them
        predict_pool_always(exp, c, exp.detector(c))
        write_json(wd.cycle0_path, exp.cycle0_key())
        exp.log(f"cycle 0 done: {wd.cycle0_path} (shared with --cycle0-from)")
        return False
    sel = None
    if c < exp.protocol.cycles:
        sel = wd.read_selection(c) if wd.selected(c) else acquire(exp, c, state)
        if exp.human:  # the annotation job of the selected frames (vidal.human); reveal waits for its labels
            human.job_for_selection(exp, c, sel)
        wd.save_state(reveal(exp, state, sel, c), c + 1)
    wd.write(c, "row.json", cycle_row(exp, c, state, ev, sel))
    wd.write_metrics()
    return True


def run_reference(exp: Experiment) -> dict:
    """Train once on the whole train split from the start weights and evaluate (thesis Table 2.2
    "All data"); ``reference.json``."""
    wd = exp.wd
    if wd.reference_path.is_file():
        return read_json(wd.reference_path)
    wd.step_dir(REFERENCE, make=True)
    if not wd.trained(REFERENCE):
        exp.log(f"reference: train on all {len(exp.train_set)} pool frames")
        train_model(exp, np.arange(len(exp.train_set)), -1, REFERENCE, start=None, kind="reference")
    det = exp.new_detector(-1, "reference")
    det.load_weights(wd.path(REFERENCE, "model.pt"))
    exp.log("reference: evaluate")
    ev = evaluate_model(exp, det)
    train = wd.read(REFERENCE, "train.json")
    ref = {"acquisition": "all_data", "seed": exp.seed, "labeled": len(exp.train_set), "labeled_fraction": 1.0,
           "mAP": ev["mAP"], "AP": ev["AP"], "mAP_all_scores": ev.get("mAP_all_scores"),
           "AP_all_scores": ev.get("AP_all_scores"), "time_train_s": train["time_s"], "time_evaluate_s": ev["time_s"]}
    write_json(wd.reference_path, ref)
    exp.log(f"reference: mAP@0.5 {ev['mAP'] if ev['mAP'] is not None else float('nan'):.4f} -> {wd.reference_path}")
    return read_json(wd.reference_path)


# ----------------------------------------------------------------------------- the experiment


class Experiment:
    """One AL run in one work dir. ``Experiment(cfg, work_dir, seed).run()``; see the module docstring.

    Everything is validated in the constructor, before any training. It holds what the steps of a
    cycle read (the splits, the protocol, the acquisition, the tracker, the oracle, the work dir)
    and the detector of the latest cycle.
    """

    def __init__(self, cfg: dict, work_dir: str | os.PathLike, seed: int, *, resume: bool = False,
                 progress: bool = True, threads: int | None = None, command: str | None = None,
                 echo: Callable[[str], None] | None = None, cycle0_from: str | os.PathLike | None = None,
                 only: str | None = None, oracle: Oracle | None = None, pool_shards: bool | None = None):
        if only not in ONLY:
            raise ExperimentError(f"only must be one of {', '.join(map(str, ONLY))}, got {only!r}")
        self.cfg, self.seed, self.resume, self.progress = cfg, int(seed), resume, progress
        self.threads, self.command, self.only = threads, command, only
        self.wd = WorkDir(work_dir)
        # several processes (--launcher ddp): rank 0 runs the loop and writes, the others follow
        self.ranks = distributed.current()
        self.pool_shards = self.ranks.distributed if pool_shards is None else bool(pool_shards)
        self._echo = echo or (lambda s: print(s, flush=True))
        if not self.ranks.is_main:
            self._echo, self.progress = (lambda s: None), False
        self.cycle0_from = Path(cycle0_from) if cycle0_from is not None else None
        self.where = build.config_where(cfg)
        self._check_sections(cfg)
        self._open_splits(cfg)
        self.config_text = dump(cfg)
        self.fresh = self.wd.check(self.config_text, self.seed, self.resume)
        if self.human and (only is not None or self.cycle0_from is not None):
            raise ExperimentError("only / cycle0_from (a shared cycle 0 of a grid) need the simulated oracle; "
                                  "a run with al.oracle='human' trains on its own imported labels")
        if self.cycle0_from is not None:
            self._check_cycle0_source()
        self._detector = None  # (cycle, detector) in memory
        # built now (a missing flow cache or tracker weights stop the run before any training),
        # once per run: the flow cache is computed once; SiamFC is reset every cycle
        self.tracker = self._build_tracker() if self.tracker_spec else None
        self.oracle = oracle if oracle is not None else self._default_oracle()

    def _default_oracle(self) -> Oracle:
        """:class:`SimulatedOracle`, or with ``al.oracle="human"`` :class:`vidal.human.HumanOracle`
        (``train_set`` is then the pool with the imported labels, :class:`vidal.human.LabeledPool`)."""
        if not self.human:
            return SimulatedOracle(self.train_set)
        oracle = human.HumanOracle(self, self.train_set)
        if not self.fresh:
            oracle.refresh()
        return oracle

    def _check_sections(self, cfg: dict) -> None:
        """The al section, then the experiment spec in one pass (acquisition, tracker, detector,
        evaluation, dataset paths: :func:`vidal.build.build_spec`), before any data is opened."""
        al = al_section(cfg)
        self.spec = build.build_spec(cfg, acquisition=True, known_needs=tuple(CONTEXT_PROVIDERS))
        self.acquisition, self.needs, self.tracker_spec = self.spec.acquisition, self.spec.needs, self.spec.tracker
        human.check_config(al, self.needs, self.where)
        self.human, self.cold_start = al["oracle"] == "human", al["cold_start"]
        self.pool_subsample = al["pool_subsample"]
        self.eval_options = dict(self.spec.evaluation)

    def _open_splits(self, cfg: dict) -> None:
        """The train and test splits (validated), and what depends on the train split's size."""
        self.train_set = self.spec.open("train")
        if self.human:  # the loop sees the imported labels only (vidal.human.LabeledPool)
            self.train_set = human.LabeledPool(self.train_set)
        self.test_set = self.spec.open("test")
        if self.train_set.classes != self.test_set.classes:
            raise ConfigError(f"{self.where}: train classes {self.train_set.classes} differ from test classes "
                              f"{self.test_set.classes}")
        self.classes = list(self.train_set.classes)
        self.num_classes = len(self.classes)
        self._box_counts = None
        self.protocol = resolve_protocol(cfg, len(self.train_set), total_cost=self._total_cost(cfg))
        self.initial_schedule = al_section(cfg)["initial_schedule"]
        sel = dict(getattr(self.acquisition, "selection", {}) or {})
        self.k = int(sel.get("k", self.protocol.k))
        self.per_video = bool(sel.get("per_video", self.protocol.per_video))
        self.video_of_frames = self.train_set.video_of_frames()
        from vidal.selectors import TopK

        self.selector = getattr(self.acquisition, "selector", None) or TopK()
        self.context = None  # the acquisition context of the cycle being selected
        self.context_cycle = -1  # the cycle whose context the providers fill
        self.extra_times: dict[str, float] = {}  # seconds the providers spent on the model (embeddings)

    @property
    def work_dir(self) -> Path:
        return self.wd.root

    # ---- annotation cost (al.budget_unit)
    def box_counts(self) -> np.ndarray:
        """int64 ``[N]``: ground-truth boxes of every train-split frame (read once)."""
        if self._box_counts is None:
            self._box_counts = np.array([len(self.train_set.ground_truth(i)["labels"])
                                         for i in range(len(self.train_set))], np.int64)
        return self._box_counts

    def _total_cost(self, cfg: dict) -> float | None:
        if al_section(cfg)["budget_unit"] != "boxes":
            return None
        return float(frame_costs(self.box_counts(), "boxes").sum())

    def frame_costs(self) -> np.ndarray | None:
        """Per-frame costs of the budget (:func:`vidal.selection.frame_costs`; None: frames)."""
        if self.protocol.budget_unit == "frames":
            return None
        return frame_costs(self.box_counts(), self.protocol.budget_unit)

    @property
    def acquisition_name(self) -> str:
        return str(getattr(self.acquisition, "name", type(self.acquisition).__name__))

    def log(self, line: str) -> None:
        self._echo(line)
        if self.ranks.is_main:
            self.wd.append_log(line)

    def command_followers(self, name: str, **kwargs: Any) -> None:
        """Rank 0 of several: send step ``name`` and its arguments to the other ranks
        (:func:`follow`), which join it (collective training, sharded prediction)."""
        if self.ranks.distributed and self.ranks.is_main:
            self.ranks.broadcast((name, kwargs))

    def _start_work_dir(self) -> None:
        if not self.fresh:
            self.wd.root.mkdir(parents=True, exist_ok=True)
            return
        self.wd.start(self.config_text, {
            "seed": self.seed, "command": self.command, "config_path": str(self.where),
            "acquisition": self.acquisition_name, "versions": versions(), "git_commit": git_commit() or "unknown",
            "threads": self.threads, "world_size": self.ranks.world_size, "pool_frames": len(self.train_set),
            "test_frames": len(self.test_set),
            "protocol": dataclasses.asdict(self.protocol), "k_used": self.k, "per_video_used": self.per_video,
            "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})

    # ---- shared cycle 0 (tools/run_grid.py: every method of a seed starts from one cycle-0 model)
    def cycle0_key(self) -> dict:
        """What cycle 0 depends on: the config without its ``acquisition`` / ``tracker`` sections
        (the initial labeled set, the start weights, the training and the evaluation do not read
        them), the seed and the thread count."""
        shared = {k: v for k, v in self.cfg.items() if k not in ("acquisition", "tracker") and not k.startswith("_")}
        return {"format": CYCLE0_FORMAT, "seed": self.seed, "threads": self.threads, "config": dump(shared)}

    def _check_cycle0_source(self) -> None:
        src = self.cycle0_from
        key_path = src / CYCLE0_FILE
        if not key_path.is_file():
            raise ExperimentError(f"{src} holds no shared cycle 0 ({CYCLE0_FILE} missing); make it with "
                                  f"tools/run_al.py CONFIG --work-dir {src} --only cycle0")
        try:
            theirs = read_json(key_path)
        except (OSError, ValueError) as e:
            raise ExperimentError(f"{key_path}: unreadable ({e}); remove {src} and make it again") from None
        ours = self.cycle0_key()
        if theirs != ours:
            diff = [k for k in ours if theirs.get(k) != ours[k]] if isinstance(theirs, dict) else ["format"]
            raise ExperimentError(f"{key_path}: its cycle 0 was made with another {', '.join(diff)} than this run's; "
                                  f"use the cycle 0 of the same config (all sections but acquisition and "
                                  f"tracker), seed and --threads")

    def import_cycle0(self) -> None:
        """Copy the shared cycle-0 model, training log and evaluation (the same files this run would
        have made: cycle 0 depends only on :meth:`cycle0_key`)."""
        import shutil

        src, dst = WorkDir(self.cycle0_from).step_dir(0), self.wd.cycle_dir(0)
        for name in ("model.pt", "train.json", "eval.json"):
            if not (src / name).is_file():
                raise ExperimentError(f"{src / name} missing: the shared cycle 0 in {self.cycle0_from} is "
                                      f"not finished; run it again with --only cycle0 --resume")
        names = ("model.pt", "eval.json", "train.json")  # train.json last: it marks the step done
        if (src / "pool_predictions.npz").is_file():  # same model, same pool: the same predictions
            names = ("pool_predictions.npz",) + names
        shards = WorkDir(self.cycle0_from).pool_shards(0, self.video_of_frames)
        if shards.done:  # per-video shards: each copied, done.json last
            ours = self.wd.pool_shards(0, self.video_of_frames)
            ours.folder.mkdir(parents=True, exist_ok=True)
            for v in range(shards.n_videos):
                atomic_write(ours.path(v), lambda f, v=v: shutil.copyfileobj(open(shards.path(v), "rb"), f))
            atomic_write(ours.folder / "done.json",
                         lambda f: shutil.copyfileobj(open(shards.folder / "done.json", "rb"), f))
        for name in names:
            atomic_write(dst / name, lambda f, n=name: shutil.copyfileobj(open(src / n, "rb"), f))
        self.log(f"cycle 0: shared model of {self.cycle0_from}")

    # ---- tracker and detector
    def _build_tracker(self):
        return build.build_tracker(self.cfg, self.tracker_spec, self.train_set)

    def seed_torch(self, cycle: int, step: str) -> int:
        import torch

        s = step_int_seed(self.seed, cycle, step)
        torch.manual_seed(s)
        return s

    def new_detector(self, cycle: int, step: str = "train"):
        s = self.seed_torch(cycle, step)
        return self.spec.detector.build(self.classes, seed=s)

    def remember_detector(self, cycle: int | None, det) -> None:
        """Keep ``det`` in memory as cycle ``cycle``'s model (None: forget the one kept)."""
        self._detector = (cycle, det) if cycle is not None else None

    def detector(self, c: int):
        """The model trained in cycle ``c`` (in memory, or loaded from its checkpoint)."""
        if self._detector is not None and self._detector[0] == c:
            return self._detector[1]
        det = self.new_detector(c)
        det.load_weights(self.wd.path(c, "model.pt"))
        self._detector = (c, det)
        return det

    @staticmethod
    def predict_chunk(det) -> int:
        """Frames per ``predict`` call: four of the detector's prediction batches."""
        return max(1, det.config.predict_batch_size) * 4

    # ---- the loop
    def run(self) -> dict:
        """Run (or resume) the experiment; returns ``{"rows": [...], "reference": {...} | None}``, and
        ``"waiting"``: what to do next, when a human-oracle run stopped for labels (:mod:`vidal.human`)."""
        import torch

        if self.threads:
            torch.set_num_threads(int(self.threads))
        # every rank has checked the work dir (constructor) before rank 0 writes to it
        self.ranks.barrier()
        if not self.ranks.is_main:
            follow(self)
            return {"rows": [], "reference": None}
        self.wd.root.mkdir(parents=True, exist_ok=True)
        # one process per work dir: a second one stops here in one line naming the holder's PID
        with FolderLock(self.wd.root, "AL run (tools/run_al.py)"):
            try:
                result = self._run_locked()
            except human.LabelsPending as waiting:  # al.oracle="human": stop until the labels are imported
                self.log(str(waiting))
                result = {"rows": self.wd.write_metrics(), "reference": None, "waiting": str(waiting)}
        # on an error rank 0 exits without this, and torchrun stops the other ranks
        self.command_followers("stop")
        return result

    def _run_locked(self) -> dict:
        self._start_work_dir()
        P = self.protocol
        self.log(f"{'new' if self.fresh else 'resuming'} experiment in {self.work_dir}: {self.acquisition_name}, "
                 f"seed {self.seed}, pool {len(self.train_set)} frames / {self.train_set.n_videos} videos, "
                 f"initial {P.initial} + {P.cycles} x {P.budget} frames, k={self.k}, per_video={self.per_video}")
        if self.only == "reference":
            return {"rows": [], "reference": run_reference(self)}
        if not self.wd.has_state(0) and self.human:  # job 0 (cold start); waits for its labels
            self.wd.save_state(human.cold_start(self), 0)
        if not self.wd.has_state(0):
            state = ALState(len(self.train_set))
            state.reveal(initial_labeled(len(self.train_set), P.initial, self.video_of_frames, seed=self.seed,
                                         k=P.k, per_video=P.per_video), 0)
            self.wd.save_state(state, 0)
        for c in range(P.cycles + 1):
            if not run_cycle(self, c):
                return {"rows": [], "reference": None}
        rows = self.wd.write_metrics()
        reference = run_reference(self) if P.reference else None
        self.log(f"metrics: {self.wd.metrics_path}")
        return {"rows": rows, "reference": reference}


def follow(exp: Experiment) -> None:
    """The loop of a rank other than 0 (``--launcher ddp``): wait for rank 0's next step and join
    it: ``train`` (:func:`train_model`, each rank its share of every global batch) and
    ``predict_pool`` (:func:`predict_pool_sharded`, each rank its videos), until ``stop``. Every
    other step (evaluation, scoring, selection, the files) is rank 0's alone; the weights and
    files a step needs are on disk or in memory before rank 0 sends it. With ``al.oracle="human"``
    rank 0 sends ``labels`` before each training: the imported labels it holds (labels imported
    while the run goes are read by rank 0 at its next reveal, so the ranks would differ)."""
    while True:
        with distributed.waiting_for_rank0(exp.ranks.rank, "evaluates, scores and selects", resumable=True):
            name, kwargs = exp.ranks.broadcast()
        if name == "stop":
            return
        if name == "labels":
            exp.train_set.labels = kwargs["labels"]
        elif name == "train":
            train_model(exp, **kwargs)
        elif name == "predict_pool":
            c = kwargs["c"]
            predict_pool_sharded(exp, c, exp.detector(c), exp.wd.pool_shards(c, exp.video_of_frames), kwargs["todo"])
        else:  # pragma: no cover - rank 0 sends only the names above
            raise RuntimeError(f"unknown step {name!r} from rank 0")


def run_experiment(cfg: dict, work_dir: str | os.PathLike, seed: int, **kwargs: Any) -> dict:
    """``Experiment(cfg, work_dir, seed, **kwargs).run()``."""
    return Experiment(cfg, work_dir, seed, **kwargs).run()
