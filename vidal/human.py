"""A human oracle in the AL loop (issue 16): annotation jobs out, people's boxes back in.

With ``al.oracle = "human"`` the loop does not reveal labels from the pool file (which may hold no
annotations at all, e.g. a video imported by tools/import_video.py). Instead, whenever it needs
labels it writes an *annotation job* into the work dir and stops with a message saying what to do
next; tools/export_selection.py turns the job into a Label Studio / CVAT / COCO task file,
tools/import_labels.py brings the annotators' boxes back into ``labels.json``, and
``tools/run_al.py ... --resume`` trains on them and goes on.

Work dir files (both written atomically; the pool file is never modified)::

    jobs/job_XXX.json   the frames cycle XXX trains on in addition to the earlier ones (job 0: the
                        cold-start set), each with its video name, frame index, size, and the
                        model's detections as pre-annotations (``vidal-annotation-job-v1``)
    labels.json         the imported labels (``vidal-labels-v1``): pixel boxes and class ids per
                        frame, the frames given up (``dropped``) per job, and the imports made

A job's frame is *labeled* once an import holds an annotation for it (zero boxes is a valid
annotation: nothing to see), *pending* until then (annotators skipped it), or *dropped* when the
user gave up on the pending frames (``import_labels.py WORK_DIR --drop-pending``; they return to
the unlabeled pool). The run waits (:class:`LabelsPending`) while any frame of the job it needs is
pending; a job is *closed* once the cycle it feeds has its ALState (``state_cycle_XXX.npz``), and
later imports into it are refused.

Cold start (no labels at all): job 0 is ``al.initial`` frames chosen by Random+R (uniform random
scores with the protocol's temporal exclusion ``k`` and per-video round robin: the simulated
protocol's initial set), or with ``al.cold_start = "acquisition"`` by the configured acquisition
on the model of the config's start weights (``detector.weights``, e.g. COCO), whose detections
then become the job's pre-annotations.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np

JOB_FORMAT = "vidal-annotation-job-v1"
LABELS_FORMAT = "vidal-labels-v1"
JOBS_DIR = "jobs"
LABELS_FILE = "labels.json"
ORACLES = ("simulated", "human")
COLD_STARTS = ("random", "acquisition")


class LabelsPending(Exception):
    """The run needs labels that have not been imported yet; the message says what to do next."""


class LabelError(ValueError):
    """An import cannot be applied (unknown class, frame not in the job, box outside the image,
    a closed job); one line naming the file and the task."""


# ----------------------------------------------------------------------------- files


def _atomic_json(path: Path, obj: Any) -> None:
    from vidal.workdir import write_json

    path.parent.mkdir(parents=True, exist_ok=True)
    write_json(path, obj)


def job_path(root: str | os.PathLike, number: int) -> Path:
    return Path(root) / JOBS_DIR / f"job_{number:03d}.json"


def job_numbers(root: str | os.PathLike) -> list[int]:
    """The numbers of the jobs written so far, ascending."""
    d = Path(root) / JOBS_DIR
    if not d.is_dir():
        return []
    out = []
    for p in d.glob("job_*.json"):
        try:
            out.append(int(p.stem[4:]))
        except ValueError:
            continue
    return sorted(out)


def _prediction_dict(p) -> dict:
    return {"boxes": np.asarray(p.boxes, np.float64).reshape(-1, 4).tolist(),
            "labels": np.asarray(p.labels, np.int64).tolist(), "scores": np.asarray(p.scores, np.float64).tolist()}


def make_job(number: int, dataset, frames: Sequence[int], *, made_by: str, selected_in: int | None,
             predictions: Sequence | None = None, logs: dict[str, np.ndarray] | None = None,
             scores: np.ndarray | None = None) -> dict:
    """The job dict: ``frames`` (train-split flat indices) with ``video`` / ``frame`` / ``width`` /
    ``height``, ``prediction`` (``{boxes [N,4] pixel x1 y1 x2 y2, labels 1..C, scores}`` or None)
    and per-frame ``log`` figures (e.g. TC's ``est_fp`` / ``est_fn``)."""
    entries = []
    for k, i in enumerate(int(f) for f in frames):
        v, t = dataset.locate(i)
        info = dataset.videos[v]
        e = {"index": i, "video": info.name, "frame": int(t), "width": int(info.width), "height": int(info.height),
             "prediction": _prediction_dict(predictions[k]) if predictions is not None else None,
             "log": {name: float(a[k]) for name, a in (logs or {}).items()}}
        if scores is not None:
            e["score"] = float(scores[k])
        entries.append(e)
    return {"format": JOB_FORMAT, "number": int(number), "classes": list(dataset.classes), "made_by": made_by,
            "selected_in_cycle": selected_in, "frames": entries}


def write_job(root: str | os.PathLike, job: dict) -> Path:
    path = job_path(root, job["number"])
    _atomic_json(path, job)
    return path


def read_job(root: str | os.PathLike, number: int) -> dict:
    from vidal.workdir import ExperimentError, read_json

    path = job_path(root, number)
    if not path.is_file():
        have = job_numbers(root)
        known = f"jobs {', '.join(map(str, have))}" if have else "no job yet (run tools/run_al.py first)"
        raise ExperimentError(f"{path}: no such annotation job; this work dir has {known}")
    job = read_json(path)
    if not isinstance(job, dict) or job.get("format") != JOB_FORMAT:
        raise ExperimentError(f"{path}: not a {JOB_FORMAT} file; delete it and rerun with --resume to write it again")
    return job


class LabelStore:
    """``labels.json``: ``frames {index: {"boxes" [[x1,y1,x2,y2]], "labels" [ids], "job"}}``,
    ``dropped {job: [indices]}``, ``imports [{file, format, job, frames}]``."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)
        self.path = self.root / LABELS_FILE
        self.frames: dict[int, dict] = {}
        self.dropped: dict[int, list[int]] = {}
        self.imports: list[dict] = []
        if self.path.is_file():
            from vidal.workdir import read_json

            d = read_json(self.path)
            if not isinstance(d, dict) or d.get("format") != LABELS_FORMAT:
                from vidal.workdir import ExperimentError

                raise ExperimentError(f"{self.path}: not a {LABELS_FORMAT} file; it was changed outside vidal")
            self.frames = {int(k): v for k, v in d["frames"].items()}
            self.dropped = {int(k): [int(i) for i in v] for k, v in d.get("dropped", {}).items()}
            self.imports = list(d.get("imports", []))

    def to_json(self) -> dict:
        return {"format": LABELS_FORMAT, "frames": {str(k): self.frames[k] for k in sorted(self.frames)},
                "dropped": {str(k): v for k, v in sorted(self.dropped.items())}, "imports": self.imports}

    def save(self) -> None:
        _atomic_json(self.path, self.to_json())

    def arrays(self) -> dict[int, tuple[np.ndarray, np.ndarray]]:
        """``{flat index: (boxes float32 [N,4], labels int64 [N])}`` of every labeled frame."""
        return {i: (np.asarray(e["boxes"], np.float32).reshape(-1, 4), np.asarray(e["labels"], np.int64))
                for i, e in self.frames.items()}

    def status(self, job: dict) -> tuple[list[int], list[int], list[int]]:
        """``(labeled, pending, dropped)`` frames of ``job``."""
        dropped = set(self.dropped.get(int(job["number"]), []))
        labeled, pending, gone = [], [], []
        for e in job["frames"]:
            i = int(e["index"])
            (labeled if i in self.frames else gone if i in dropped else pending).append(i)
        return labeled, pending, gone


# ----------------------------------------------------------------------------- the pool with human labels


class LabeledPool:
    """The train split with the imported labels as its ground truth: ``ground_truth(i)`` /
    ``dataset[i]`` hold the human boxes of a labeled frame and no box for any other frame (a pool
    file's own annotations, if it has any, are never shown to the loop). Everything else (images,
    videos, ``locate``...) is the wrapped :class:`vidal.data.VideoDataset`'s."""

    def __init__(self, dataset, labels: dict[int, tuple[np.ndarray, np.ndarray]] | None = None):
        self.dataset = dataset
        self.labels = dict(labels or {})

    def __getattr__(self, name: str):
        if name.startswith("__") or name in ("dataset", "labels"):
            raise AttributeError(name)
        return getattr(self.dataset, name)

    def __getstate__(self) -> dict:
        return {"dataset": self.dataset, "labels": self.labels}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)

    def __len__(self) -> int:
        return len(self.dataset)

    def ground_truth(self, index: int) -> dict[str, Any]:
        v, t = self.dataset.locate(index)
        info = self.dataset.videos[v]
        boxes, labels = self.labels.get(info.offset + t, (np.zeros((0, 4), np.float32), np.zeros(0, np.int64)))
        n = len(boxes)
        return {"boxes": boxes.astype(np.float32, copy=True), "labels": labels.astype(np.int64, copy=True),
                "track_ids": np.arange(1, n + 1, dtype=np.int64), "occlusion": np.zeros(n, np.float32),
                "truncation": np.zeros(n, np.float32), "visible_fraction": np.ones(n, np.float32),
                "video_index": v, "frame_index": t, "index": info.offset + t, "height": info.height,
                "width": info.width}

    def __getitem__(self, index: int) -> dict[str, Any]:
        sample = self.ground_truth(index)
        if self.dataset.with_frames:
            sample["image"] = self.dataset.image(index)
        return sample

    def __iter__(self):
        for i in range(len(self)):
            yield self[i]


# ----------------------------------------------------------------------------- the oracle


def next_steps(exp, job: dict, pending: Sequence[int]) -> str:
    """What the user does next, as the lines the run prints when it stops for labels."""
    root = exp.work_dir
    resume = exp.command or f"python tools/run_al.py CONFIG --work-dir {root} --seed {exp.seed}"
    if "--resume" not in resume.split():
        resume += " --resume"
    n = len(job["frames"])
    pre = ("the model's detections come as pre-annotations" if any(e.get("prediction") for e in job["frames"])
           else "no pre-annotations: the cold start has no model")
    return (f"waiting for labels: job {job['number']} ({job_path(root, job['number'])}) has {len(pending)} of its "
            f"{n} frames still to label (cycle {job['number']} trains on them). Next:\n"
            f"  1. python tools/export_selection.py {root} --format label-studio --out DIR   "
            f"(or --format cvat / coco; {pre})\n"
            f"  2. label the frames in the tool and export its annotations (Label Studio: JSON; CVAT: "
            f"CVAT for images 1.1; COCO json)\n"
            f"  3. python tools/import_labels.py {root} EXPORTED_FILE --format label-studio   "
            f"(frames left unlabeled stay pending; give them up with --drop-pending)\n"
            f"  4. {resume}")


class HumanOracle:
    """The :class:`vidal.loop.Oracle` of ``al.oracle = "human"``: ``reveal(frames)`` returns the
    imported labels of the frames (None for a dropped frame), or raises :class:`LabelsPending` while
    some are still pending. The loop writes the job (:func:`job_for_selection`) before it asks."""

    def __init__(self, exp, pool: LabeledPool):
        self.exp, self.pool = exp, pool

    def refresh(self) -> LabelStore:
        store = LabelStore(self.exp.work_dir)
        self.pool.labels = store.arrays()
        return store

    def job_of(self, frames: np.ndarray) -> dict:
        want = sorted(int(i) for i in frames)
        for n in reversed(job_numbers(self.exp.work_dir)):
            job = read_job(self.exp.work_dir, n)
            if sorted(int(e["index"]) for e in job["frames"]) == want:
                return job
        raise RuntimeError(f"no annotation job in {self.exp.work_dir / JOBS_DIR} holds frames {want[:5]}...")

    def reveal(self, frames: np.ndarray) -> list[dict | None]:
        store = self.refresh()
        job = self.job_of(frames)
        labeled, pending, dropped = store.status(job)
        if pending:
            raise LabelsPending(next_steps(self.exp, job, pending))
        if not labeled:
            raise LabelsPending(f"job {job['number']}: every frame was dropped; nothing to train on. Import labels "
                                f"for its frames (python tools/import_labels.py {self.exp.work_dir} FILE ...) before "
                                f"--resume")
        return [self.pool.ground_truth(int(i)) if int(i) in store.frames else None for i in frames]


def check_config(al: dict, needs, where: str) -> None:
    """The human-oracle keys of the ``al`` section (one-line ConfigErrors)."""
    from vidal.config import ConfigError

    if al["oracle"] not in ORACLES:
        raise ConfigError(f"{where}: al.oracle must be one of {', '.join(ORACLES)}, got {al['oracle']!r}")
    if al["cold_start"] not in COLD_STARTS:
        raise ConfigError(f"{where}: al.cold_start must be one of {', '.join(COLD_STARTS)}, got {al['cold_start']!r}")
    if al["oracle"] == "simulated" and al["cold_start"] != "random":
        raise ConfigError(f"{where}: al.cold_start={al['cold_start']!r} applies to al.oracle='human' only "
                          f"(a simulated run's initial set is random); remove it or set al.oracle='human'")
    if al["oracle"] == "human":
        if "ground_truth" in needs:
            raise ConfigError(f"{where}: the acquisition reads the pool's ground truth, which a human-labelled pool "
                              f"does not have (al.oracle='human'); choose another acquisition")
        if al["reference"]:
            raise ConfigError(f"{where}: al.reference=True trains on every pool frame's ground truth, which a "
                              f"human-labelled pool does not have; set al.reference=False")
        if al.get("budget_unit", "frames") != "frames":
            raise ConfigError(f"{where}: al.budget_unit={al['budget_unit']!r} prices a frame by its ground-truth boxes "
                              f"before it is selected, which a human-labelled pool does not have; use "
                              f"al.budget_unit='frames' with al.oracle='human'")


# ----------------------------------------------------------------------------- jobs the loop writes


def _job_predictions(exp, c: int, frames: np.ndarray, det) -> list:
    from vidal.training import predict_frames

    done = exp.wd.stored_pool_predictions(c, exp.video_of_frames) if c >= 0 else None
    if done is not None:
        return [done[0][int(i)] for i in frames]
    return predict_frames(det, exp.train_set, frames, batch_size=exp.predict_chunk(det), progress=exp.progress,
                          desc="pre-annotate")


def job_for_selection(exp, c: int, sel) -> dict:
    """Write (unless written) job ``c + 1``: cycle ``c``'s selected frames with the cycle-``c`` model's
    detections and the acquisition's per-frame figures."""
    root = exp.work_dir
    if job_path(root, c + 1).is_file():
        return read_job(root, c + 1)
    pos = np.searchsorted(sel.candidates, sel.selected)
    logs = {k: np.asarray(v, np.float64)[pos] for k, v in sel.logs.items()}
    preds = _job_predictions(exp, c, sel.selected, exp.detector(c))
    job = make_job(c + 1, exp.train_set, sel.selected, made_by=f"{exp.acquisition_name} on the cycle-{c} model",
                   selected_in=c, predictions=preds, logs=logs, scores=sel.selected_scores)
    write_job(root, job)
    exp.log(f"cycle {c}: annotation job {c + 1}: {len(sel.selected)} frames -> {job_path(root, c + 1)}")
    return job


def cold_start(exp):
    """The ALState of cycle 0 from job 0 (written first if missing: Random+R or, with
    ``al.cold_start = "acquisition"``, the acquisition on the start-weights model); raises
    :class:`LabelsPending` until its labels are in."""
    from vidal.selection import ALState, initial_labeled, select, step_rng

    root, P = exp.work_dir, exp.protocol
    n = len(exp.train_set)
    if not job_path(root, 0).is_file():
        if exp.cold_start == "random":
            frames = initial_labeled(n, P.initial, exp.video_of_frames, seed=exp.seed, k=P.k, per_video=P.per_video)
            job = make_job(0, exp.train_set, frames, made_by="cold start: Random+R (random frames, temporal "
                           f"exclusion k={P.k}, per-video round robin {P.per_video})", selected_in=None)
        else:
            from vidal.loop import build_context, score_candidates
            from vidal.training import predict_frames

            exp.log(f"cold start: {exp.acquisition_name} on the start-weights model (detector.weights)")
            det = exp.new_detector(-1, "initial")
            preds = predict_frames(det, exp.train_set, None, batch_size=exp.predict_chunk(det), progress=exp.progress,
                                   desc="cold start: predict pool")
            empty = ALState(n)
            ctx = build_context(exp, -1, empty, preds)
            scores, _ = score_candidates(exp, ctx)
            frames = select(scores, ctx.candidates, P.initial, empty, exp.video_of_frames, k=exp.k,
                            per_video=exp.per_video, rng=step_rng(exp.seed, -1, "select"))
            pos = np.searchsorted(ctx.candidates, frames)
            job = make_job(0, exp.train_set, frames, made_by=f"cold start: {exp.acquisition_name} on the "
                           f"start-weights model", selected_in=None, predictions=[preds[int(i)] for i in frames],
                           logs={k: np.asarray(v, np.float64)[pos] for k, v in ctx.log.items()
                                 if np.asarray(v).shape[:1] == ctx.candidates.shape},
                           scores=scores[pos])
        write_job(root, job)
        exp.log(f"cold start: annotation job 0: {len(job['frames'])} frames -> {job_path(root, 0)}")
    job = read_job(root, 0)
    frames = np.array([e["index"] for e in job["frames"]], np.int64)
    labels = exp.oracle.reveal(frames)
    state = ALState(n)
    state.reveal(np.sort(frames[[g is not None for g in labels]]), 0)
    return state


# ----------------------------------------------------------------------------- imports (tools/import_labels.py)


def work_dir_of(root: str | os.PathLike) -> Path:
    """``root`` after checking it holds a human-oracle AL run (one-line ExperimentError otherwise)."""
    from vidal.workdir import ExperimentError

    root = Path(root)
    if not (root / "experiment.json").is_file():
        raise ExperimentError(f"{root}: holds no vidal AL run (no experiment.json); pass the --work-dir of "
                              f"tools/run_al.py")
    if not job_numbers(root):
        raise ExperimentError(f"{root}: holds no annotation job ({JOBS_DIR}/ is empty); only a run with "
                              f"al.oracle=\"human\" writes them")
    return root


def pick_job(root: Path, number: int | None) -> dict:
    """Job ``number``, default the latest one."""
    return read_job(root, job_numbers(root)[-1] if number is None else number)


def job_closed(root: Path, number: int) -> bool:
    """A job is closed once the cycle it feeds has its ALState: later imports cannot change that cycle."""
    return (Path(root) / f"state_cycle_{number:03d}.npz").is_file()


def import_labels(root: str | os.PathLike, path: str | os.PathLike | None, fmt: str | None, *,
                  number: int | None = None, drop_pending: bool = False) -> dict:
    """Merge the tool's export ``path`` into ``labels.json`` for job ``number`` (default: the latest);
    ``drop_pending`` then gives up the frames still pending. Importing the same file again changes
    nothing. Holds the work dir's lock (not while a run works in it). Returns a summary dict."""
    import hashlib

    from vidal.annotation_io import read_labels
    from vidal.locking import FolderLock

    root = work_dir_of(root)
    with FolderLock(root, "label import (tools/import_labels.py)"):
        job = pick_job(root, number)
        n = int(job["number"])
        if job_closed(root, n):
            latest = job_numbers(root)[-1]
            raise LabelError(f"{job_path(root, n)}: job {n} is closed (cycle {n} was already set up from it); "
                             f"its unlabeled frames are back in the pool. Import into the latest job "
                             f"{latest} instead" + ("" if latest != n else " (none is open: the run is finished)"))
        store = LabelStore(root)
        before = json.dumps(store.to_json(), sort_keys=True)
        new = changed = 0
        if path is not None:
            got = read_labels(path, fmt, job)
            for i, e in got.items():
                entry = {"boxes": e["boxes"], "labels": e["labels"], "job": n}
                old = store.frames.get(i)
                if old == entry:
                    continue
                new, changed = new + (old is None), changed + (old is not None)
                store.frames[i] = entry
                if i in store.dropped.get(n, []):
                    store.dropped[n].remove(i)
            if new or changed:
                digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()
                store.imports.append({"file": str(Path(path).resolve()), "format": fmt, "job": n, "sha256": digest,
                                      "new": new, "changed": changed})
        labeled, pending, dropped = store.status(job)
        if drop_pending and pending:
            store.dropped[n] = sorted(set(store.dropped.get(n, [])) | set(pending))
            labeled, pending, dropped = store.status(job)
        if json.dumps(store.to_json(), sort_keys=True) != before:
            store.save()
    return {"job": n, "new": new, "changed": changed, "labeled": len(labeled), "pending": len(pending),
            "dropped": len(dropped), "frames": len(job["frames"]), "labels": str(store.path)}
