"""The active-learning experiment (design.md 1, 5.4; thesis 2.3, 2.5).

One readable loop, ``for cycle in range(cycles + 1)``:

1. **train** the detector on the labeled frames: cycle 0 from the config's start weights (e.g.
   ``detector.weights`` = COCO), every later cycle fine-tunes the model of the previous cycle
   (thesis 2.5.1; ``al.train_from="start"`` restarts from the start weights instead);
2. **evaluate** it on the test split (thesis 2.5.1: NMS 0.5, scores >= 0.5, VOC AP@0.5);
3. unless it is the last cycle: **predict** on the whole pool split (when the acquisition needs
   predictions), build the context the acquisition declares it needs (predictions, a tracker
   from the ``tracker`` section, ground truth for oracles), **score**, **select** (budget, temporal
   exclusion, per-video sampling: :mod:`vidal.selection`) and **reveal** the labels.

Cycle ``c`` trains on ``initial + c * budget`` frames; ``al.cycles`` is the number of selections
(thesis SYNTHIA-AL: 2 % initial + 5 x 2 % = 12 %, six models). ``al.reference=True`` also trains
once on the whole pool (the "All data" row of thesis Table 2.2).

Config sections (unknown keys are errors):

- ``al = dict(initial=0.02, budget=0.02, cycles=5, k=1, per_video=True, train_from="previous",
  reference=False)``: ``initial`` / ``budget`` a fraction (float) of the pool's frames or a count
  (int); ``k`` the temporal exclusion radius, ``per_video`` the per-video round robin (both for
  every method, thesis 2.6.1; the plain ``random`` acquisition overrides them with k=0,
  per_video=False); ``train_from`` ``"previous"`` or ``"start"``; ``initial_schedule`` (default
  None) overrides ``epochs`` / ``lr`` / ``milestones`` / ``gamma`` of the schedule for cycle 0,
  which trains from the start weights on the small initial set.
- ``acquisition = dict(name="entropy", **kwargs)``: a name of :data:`vidal.registry.ACQUISITIONS`,
  the other keys go to its constructor (strict).
- ``tracker = dict(name="flow", **options)``: used when the acquisition needs tracks; built once per
  run with ``TRACKERS.get(name).for_dataset(pool, **options)`` (``reset()`` each cycle if it has one).
- ``dataset``, ``detector``, ``schedule``, ``evaluation``: :mod:`vidal.build`.

Work dir (every file written atomically, tmp + ``os.replace``)::

    config.py               resolved config (vidal.config.dump)
    experiment.json         seed, command, versions (torch, torchvision, numpy, vidal), git commit
    state_cycle_XXX.npz     ALState before training cycle XXX (cycle_of per pool frame)
    cycle_XXX/model.pt      checkpoint after training (only the latest cycle's is kept)
    cycle_XXX/train.json    training time and losses
    cycle_XXX/eval.json     test metrics
    cycle_XXX/pool_predictions.npz   predictions on the pool (when the acquisition needs them):
                            plain arrays (vidal.detection.base.predictions_to_arrays) and
                            time_s, read with allow_pickle=False
    cycle_XXX/selection.npz candidates, scores, selected frames, their real FP / FN, acquisition log
    cycle_XXX/row.json      the metrics row of the cycle
    metrics.jsonl           all rows, one per cycle
    reference.json          all-data reference (al.reference)
    cycle0.json             only in an ``only="cycle0"`` run: what its cycle-0 model depends on
    log.txt                 the lines printed

Shared cycle 0 (``only="cycle0"`` / ``cycle0_from``, used by tools/run_grid.py): cycle 0 does not
depend on the acquisition (the initial set, the start weights, the training and the evaluation come
from ``(seed, config without acquisition / tracker)``), so a grid trains it once per seed in an
``only="cycle0"`` run and every method's run copies its model, ``train.json`` and ``eval.json`` after
checking that ``cycle0.json`` matches its own config, seed and threads. The run then continues
exactly as a resumed run.

Determinism and resume: the RNG of every step comes from ``(seed, cycle, step)``
(:func:`vidal.selection.step_rng`), never from a stream consumed in sequence, and every step
writes its result before the next starts; ``resume=True`` skips the steps whose files exist and
redoes the interrupted one, so an interrupted and resumed run ends with the same selections and
metrics as an uninterrupted one (with the same number of threads).
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from vidal.config import ConfigError, check_keys, dump, section
from vidal.jsonsafe import json_safe
from vidal.provenance import git_commit, versions
from vidal.selection import (
    ALState,
    budget_count,
    check_budget,
    initial_labeled,
    select,
    step_int_seed,
    step_rng,
)
from vidal.training import FrameView

AL_DEFAULTS: dict[str, Any] = {"initial": 0.02, "budget": 0.02, "cycles": 5, "k": 1, "per_video": True,
                               "train_from": "previous", "reference": False, "initial_schedule": None}
#: Keys of ``al.initial_schedule``: the schedule of cycle 0 (from the start weights), when it should
#: differ from the fine-tuning cycles' (e.g. more epochs on the small initial set)
INITIAL_SCHEDULE_KEYS = ("epochs", "lr", "milestones", "gamma")
TRAIN_FROM = ("previous", "start")
STATE_FORMAT = "vidal-al-state-v1"
POOL_PREDICTIONS_FORMAT = "vidal-pool-predictions-v1"
CYCLE0_FORMAT = "vidal-shared-cycle0-v1"
CYCLE0_FILE = "cycle0.json"
#: ``Experiment(only=...)``: None runs the cycles (and the reference when ``al.reference``);
#: "cycle0" trains and evaluates cycle 0 for sharing; "reference" trains only the all-data model
ONLY = (None, "cycle0", "reference")


class ExperimentError(ValueError):
    """The experiment cannot start or resume (work dir, inputs); one line naming the cause."""


# ----------------------------------------------------------------------------- small helpers


def _stall(path: Path) -> None:
    """Test hook: with ``VIDAL_STALL_WRITE=<file name>``, stop after writing the temporary file of
    that name (before the rename) so that a test can kill the process mid-write."""
    if os.environ.get("VIDAL_STALL_WRITE") == path.name:
        print(f"STALL {path.name}", flush=True)
        time.sleep(3600)


def atomic_write(path: Path, write: Callable[[Any], None], mode: str = "wb") -> None:
    """Write ``path`` through ``write(file)`` into ``path.tmp`` then rename: no half files."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, mode) as f:
        write(f)
        f.flush()
        os.fsync(f.fileno())
    _stall(path)
    os.replace(tmp, path)


def write_json(path: Path, obj: Any) -> None:
    text = json.dumps(json_safe(obj), indent=1, sort_keys=True)
    atomic_write(path, lambda f: f.write(text + "\n"), "w")


def read_json(path: Path) -> Any:
    return json.loads(Path(path).read_text())


def write_pool_predictions(path: Path, predictions: Sequence, time_s: float) -> None:
    """``pool_predictions.npz``: :func:`vidal.detection.base.predictions_to_arrays` and ``time_s``."""
    from vidal.detection.base import predictions_to_arrays

    arrays = predictions_to_arrays(predictions)
    atomic_write(path, lambda f: np.savez(f, format=POOL_PREDICTIONS_FORMAT, time_s=np.float64(time_s), **arrays))


def read_pool_predictions(path: Path, n_frames: int) -> tuple[list, float]:
    """``(predictions, time_s)`` from :func:`write_pool_predictions`'s file, read with
    ``allow_pickle=False`` (nothing in it executes); anything else is a one-line ExperimentError."""
    from vidal.detection.base import predictions_from_arrays

    try:
        with np.load(path, allow_pickle=False) as z:
            if "format" not in z or str(z["format"]) != POOL_PREDICTIONS_FORMAT:
                raise ValueError(f"not {POOL_PREDICTIONS_FORMAT}")
            predictions, time_s = predictions_from_arrays(z), float(z["time_s"])
        if len(predictions) != n_frames:
            raise ValueError(f"predictions of {len(predictions)} frames, the pool has {n_frames}")
    except Exception as e:  # noqa: BLE001 - zip / format / pickled-object errors: name the file, one line
        first = (str(e).strip().splitlines() or [""])[0][:160]
        raise ExperimentError(f"{path}: cannot be read as pool predictions ({type(e).__name__}: {first}); "
                              f"delete it and resume to predict again") from None
    return predictions, time_s


# ----------------------------------------------------------------------------- config sections


@dataclasses.dataclass
class Protocol:
    """The ``al`` section resolved against the pool size."""

    initial: int
    budget: int
    cycles: int
    k: int
    per_video: bool
    train_from: str
    reference: bool


def al_section(cfg: dict) -> dict[str, Any]:
    where = cfg.get("_config_path_", "config")
    al = section(cfg, "al")
    check_keys(al, AL_DEFAULTS, f"{where}: al")
    al = {**AL_DEFAULTS, **al}
    if al["train_from"] not in TRAIN_FROM:
        raise ConfigError(f"{where}: al.train_from must be one of {', '.join(TRAIN_FROM)}, got {al['train_from']!r}")
    for key in ("cycles", "k"):
        if isinstance(al[key], bool) or not isinstance(al[key], int) or al[key] < 0:
            raise ConfigError(f"{where}: al.{key} must be an int >= 0, got {al[key]!r}")
    for key in ("per_video", "reference"):
        if not isinstance(al[key], bool):
            raise ConfigError(f"{where}: al.{key} must be True or False, got {al[key]!r}")
    al["initial_schedule"] = _initial_schedule(al["initial_schedule"], where)
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


def resolve_protocol(cfg: dict, n_frames: int) -> Protocol:
    al = al_section(cfg)
    where = cfg.get("_config_path_", "config")
    try:
        initial = budget_count(al["initial"], n_frames, what="al.initial")
        budget = budget_count(al["budget"], n_frames, what="al.budget")
        check_budget(n_frames, initial, budget, al["cycles"])
    except ValueError as e:
        raise ConfigError(f"{where}: {e}") from None
    if initial < 1:
        raise ConfigError(f"{where}: al.initial must label at least one frame")
    return Protocol(initial, budget, al["cycles"], al["k"], al["per_video"], al["train_from"], al["reference"])


def _accepted(fn) -> tuple[set[str], bool]:
    params = inspect.signature(fn).parameters.values()
    var_kw = any(p.kind is p.VAR_KEYWORD for p in params)
    return {p.name for p in params if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD) and p.name != "self"}, var_kw


def build_acquisition(cfg: dict):
    """The acquisition of the ``acquisition`` section (name + constructor kwargs, strict)."""
    import vidal.acquisition  # noqa: F401 - registers the acquisitions
    from vidal.registry import ACQUISITIONS

    where = cfg.get("_config_path_", "config")
    acq = section(cfg, "acquisition")
    name = acq.pop("name", None)
    if name is None:
        raise ConfigError(f"{where}: acquisition needs a name; valid names: {', '.join(ACQUISITIONS.names())}")
    try:
        cls = ACQUISITIONS.get(name)
    except KeyError as e:
        raise ConfigError(f"{where}: acquisition.name: {e.args[0]}") from None
    allowed, var_kw = _accepted(cls.__init__) if cls.__init__ is not object.__init__ else (set(), False)
    if not var_kw:
        check_keys(acq, {"name"} | allowed, f"{where}: acquisition ({name})")
    try:
        return cls(**acq)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"{where}: acquisition ({name}): {e}") from None


def tracker_section(cfg: dict, needs: frozenset) -> tuple[str, dict] | None:
    """``(name, options)`` of the ``tracker`` section, checked; None when not needed."""
    import vidal.tracking  # noqa: F401 - registers the trackers
    from vidal.registry import TRACKERS

    where = cfg.get("_config_path_", "config")
    tr = section(cfg, "tracker", required="tracks" in needs)
    if not tr:
        return None
    name = tr.pop("name", None)
    try:
        cls = TRACKERS.get(name)
    except KeyError as e:
        raise ConfigError(f"{where}: tracker.name: {e.args[0]}") from None
    allowed, var_kw = _accepted(cls.for_dataset)
    if not var_kw:
        check_keys(tr, {"name"} | (allowed - {"dataset", "cls"}), f"{where}: tracker ({name})")
    return (name, tr) if "tracks" in needs else None


# ----------------------------------------------------------------------------- the experiment


class Experiment:
    """One AL run in one work dir. ``Experiment(cfg, work_dir, seed).run()``; see the module docstring.

    Everything is validated in the constructor, before any training.
    """

    def __init__(self, cfg: dict, work_dir: str | os.PathLike, seed: int, *, resume: bool = False,
                 progress: bool = True, threads: int | None = None, command: str | None = None,
                 echo: Callable[[str], None] | None = None, cycle0_from: str | os.PathLike | None = None,
                 only: str | None = None):
        from vidal.build import check_detector, evaluation_options, open_split

        self.cfg = cfg
        self.work_dir = Path(work_dir)
        self.seed = int(seed)
        self.resume = resume
        self.progress = progress
        self.threads = threads
        self.command = command
        self._echo = echo or (lambda s: print(s, flush=True))
        self.cycle0_from = Path(cycle0_from) if cycle0_from is not None else None
        if only not in ONLY:
            raise ExperimentError(f"only must be one of {', '.join(map(str, ONLY))}, got {only!r}")
        self.only = only
        self.where = cfg.get("_config_path_", "config")
        # ---- validate the sections (no training yet)
        al_section(cfg)
        self.acquisition = build_acquisition(cfg)
        self.needs = frozenset(getattr(self.acquisition, "needs", frozenset()))
        self.tracker_spec = tracker_section(cfg, self.needs)
        check_detector(cfg)
        self.eval_options = evaluation_options(cfg)
        self.pool = open_split(cfg, "train")
        self.test = open_split(cfg, "test")
        if self.pool.classes != self.test.classes:
            raise ConfigError(f"{self.where}: train classes {self.pool.classes} differ from test classes "
                              f"{self.test.classes}")
        self.classes = list(self.pool.classes)
        self.num_classes = len(self.classes)
        self.protocol = resolve_protocol(cfg, len(self.pool))
        self.initial_schedule = al_section(cfg)["initial_schedule"]
        sel = dict(getattr(self.acquisition, "selection", {}) or {})
        self.k = int(sel.get("k", self.protocol.k))
        self.per_video = bool(sel.get("per_video", self.protocol.per_video))
        self.video_of_frames = self.pool.video_of_frames()
        self.config_text = dump(cfg)
        self._check_work_dir()
        if self.cycle0_from is not None:
            self._check_cycle0_source()
        self._detector = None  # (cycle, detector) in memory
        # built now (a missing flow cache or tracker weights stop the run before any training),
        # once per run: the flow cache is computed once; SiamFC is reset every cycle
        self._tracker = self._build_tracker() if self.tracker_spec else None

    # ---- work dir
    def log(self, line: str) -> None:
        self._echo(line)
        with open(self.work_dir / "log.txt", "a") as f:
            f.write(line + "\n")

    def _check_work_dir(self) -> None:
        wd = self.work_dir
        exp, conf = wd / "experiment.json", wd / "config.py"
        if exp.is_file() and conf.is_file():
            old_seed = read_json(exp).get("seed")
            old_text = conf.read_text()
            if old_text != self.config_text or old_seed != self.seed:
                diff = []
                if old_seed != self.seed:
                    diff.append(f"seed {old_seed} vs {self.seed}")
                if old_text != self.config_text:
                    old_lines, new_lines = set(old_text.splitlines()), set(self.config_text.splitlines())
                    keys = sorted({ln.split(" = ")[0] for ln in old_lines ^ new_lines if " = " in ln})
                    diff.append(f"config sections {', '.join(keys)}")
                raise ExperimentError(f"{wd} holds a different experiment ({'; '.join(diff)}); "
                                      f"choose another --work-dir")
            if not self.resume:
                raise ExperimentError(f"{wd} already holds this experiment; pass --resume to continue it "
                                      f"or choose another --work-dir")
            self.fresh = False
        else:
            if wd.exists() and any(p.name != "log.txt" for p in wd.iterdir()):
                raise ExperimentError(f"{wd} is not empty and holds no vidal AL experiment; choose another --work-dir")
            self.fresh = True

    def _start_work_dir(self) -> None:
        wd = self.work_dir
        wd.mkdir(parents=True, exist_ok=True)
        if not self.fresh:
            return
        atomic_write(wd / "config.py", lambda f: f.write(self.config_text), "w")
        write_json(wd / "experiment.json", {
            "seed": self.seed, "command": self.command, "config_path": str(self.where),
            "acquisition": self.acquisition_name, "versions": versions(), "git_commit": git_commit() or "unknown",
            "threads": self.threads, "pool_frames": len(self.pool), "test_frames": len(self.test),
            "protocol": dataclasses.asdict(self.protocol), "k_used": self.k, "per_video_used": self.per_video,
            "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})

    @property
    def acquisition_name(self) -> str:
        return str(getattr(self.acquisition, "name", type(self.acquisition).__name__))

    def cycle_dir(self, c: int) -> Path:
        d = self.work_dir / f"cycle_{c:03d}"
        d.mkdir(parents=True, exist_ok=True)
        return d

    def state_path(self, c: int) -> Path:
        return self.work_dir / f"state_cycle_{c:03d}.npz"

    def save_state(self, state: ALState, c: int) -> None:
        sd = state.state_dict()
        atomic_write(self.state_path(c), lambda f: np.savez(f, format=STATE_FORMAT, cycle=c, **sd))

    def load_state(self, c: int) -> ALState:
        state = ALState(len(self.pool))
        with np.load(self.state_path(c)) as z:
            state.load_state_dict({"cycle_of": z["cycle_of"]})
        return state

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

    def _import_cycle0(self) -> None:
        """Copy the shared cycle-0 model, training log and evaluation (the same files this run would
        have made: cycle 0 depends only on :meth:`cycle0_key`)."""
        import shutil

        src, dst = self.cycle0_from / "cycle_000", self.cycle_dir(0)
        for name in ("model.pt", "train.json", "eval.json"):
            if not (src / name).is_file():
                raise ExperimentError(f"{src / name} missing: the shared cycle 0 in {self.cycle0_from} is "
                                      f"not finished; run it again with --only cycle0 --resume")
        for name in ("model.pt", "eval.json", "train.json"):  # train.json last: it marks the step done
            atomic_write(dst / name, lambda f, n=name: shutil.copyfileobj(open(src / n, "rb"), f))
        self.log(f"cycle 0: shared model of {self.cycle0_from}")

    # ---- detector
    def _seed_torch(self, cycle: int, step: str) -> int:
        import torch

        s = step_int_seed(self.seed, cycle, step)
        torch.manual_seed(s)
        return s

    def _new_detector(self, cycle: int, step: str = "train"):
        from vidal.build import build_detector

        s = self._seed_torch(cycle, step)
        return build_detector(self.cfg, self.classes, seed=s)

    def detector(self, c: int):
        """The model trained in cycle ``c`` (in memory, or loaded from its checkpoint)."""
        if self._detector is not None and self._detector[0] == c:
            return self._detector[1]
        det = self._new_detector(c)
        det.load_weights(self.cycle_dir(c) / "model.pt")
        self._detector = (c, det)
        return det

    def _train(self, frames: Sequence[int], cycle: int, out_dir: Path, *, start: Path | None, step: str) -> dict:
        det = self._new_detector(cycle, step)
        if start is not None:
            det.load_weights(start)
        self._seed_torch(cycle, step)
        t0 = time.perf_counter()
        overrides = self.initial_schedule if (cycle == 0 and step == "train") else {}
        history = det.train(FrameView(self.pool, frames), progress=self.progress, **overrides)
        seconds = time.perf_counter() - t0
        det.save(out_dir / "model.pt")
        losses = [h["loss"] for h in history]
        info = {"time_s": seconds, "frames": len(frames), "iterations": len(history),
                "loss_first": losses[0] if losses else None, "loss_last": losses[-1] if losses else None,
                "start": str(start) if start else "config"}
        write_json(out_dir / "train.json", info)
        self._detector = (cycle, det) if step == "train" else None
        return info

    def predict(self, det, dataset, frames: Sequence[int], desc: str) -> list:
        from tqdm import tqdm

        out = []
        chunk = max(1, getattr(getattr(det, "config", None), "predict_batch_size", 8)) * 4
        with tqdm(total=len(frames), desc=desc, unit="frame", disable=not self.progress, leave=False) as bar:
            for s in range(0, len(frames), chunk):
                ids = frames[s:s + chunk]
                out += det.predict([dataset.image(int(i)) for i in ids])
                bar.update(len(ids))
        return out

    def evaluate(self, det) -> dict:
        from vidal.evaluation import evaluate_thesis

        from vidal.training import spread_indices

        t0 = time.perf_counter()
        spread = spread_indices(len(self.test), self.eval_options["max_frames"])
        frames = [int(i) for i in (range(len(self.test)) if spread is None else spread)]
        preds = self.predict(det, self.test, frames, "evaluate")
        gts = [self.test.ground_truth(i) for i in frames]
        res = evaluate_thesis(gts, preds, self.num_classes, class_names=self.classes,
                              score_threshold=self.eval_options["score_threshold"],
                              nms_iou=self.eval_options["nms_iou"], matching=self.eval_options["matching"])
        return {"mAP": res["mAP"], "AP": res["AP"], "per_class": res["per_class"], "num_frames": len(frames),
                "time_s": time.perf_counter() - t0}

    # ---- acquisition
    def _build_tracker(self):
        from vidal.registry import TRACKERS

        name, options = self.tracker_spec
        try:
            return TRACKERS.get(name).for_dataset(self.pool, **options)
        except (TypeError, ValueError, OSError) as e:
            raise ConfigError(f"{self.where}: tracker ({name}): {e}") from None

    def tracker(self):
        return self._tracker

    def labeled_class_counts(self, state: ALState) -> np.ndarray:
        counts = np.zeros(self.num_classes + 1, np.int64)
        for i in state.labeled:
            counts += np.bincount(self.pool.ground_truth(int(i))["labels"], minlength=self.num_classes + 1)[
                :self.num_classes + 1]
        return counts

    def acquire(self, c: int, state: ALState) -> dict:
        """Predict (if needed), score and select for cycle ``c``; writes ``selection.npz``."""
        from vidal.acquisition import AcquisitionContext
        from vidal.acquisition.oracle import errors_of_frames

        d = self.cycle_dir(c)
        det = self.detector(c)
        # global RNGs too (an acquisition or tracker may use them): a resumed step reproduces
        self._seed_torch(c, "acquire")
        np.random.seed(step_int_seed(self.seed, c, "acquire"))
        t_predict = 0.0
        predictions = None
        if "predictions" in self.needs or "tracks" in self.needs:
            path = d / "pool_predictions.npz"
            if path.is_file():
                predictions, t_predict = read_pool_predictions(path, len(self.pool))
            else:
                self.log(f"cycle {c}: predict on the pool ({len(self.pool)} frames)")
                t0 = time.perf_counter()
                predictions = self.predict(det, self.pool, range(len(self.pool)), "predict pool")
                t_predict = time.perf_counter() - t0
                write_pool_predictions(path, predictions, t_predict)
        self.log(f"cycle {c}: acquire ({self.acquisition_name})")
        if os.environ.get("VIDAL_FAIL_ACQUISITION") == self.acquisition_name:  # test hook: a run that fails
            raise RuntimeError(f"VIDAL_FAIL_ACQUISITION={self.acquisition_name}")
        t0 = time.perf_counter()
        candidates = state.pool
        ctx = AcquisitionContext(
            dataset=self.pool, candidates=candidates, labeled=state.labeled_mask, num_classes=self.num_classes,
            class_names=self.classes, cycle=c, rng=step_rng(self.seed, c, "acquire"),
            predictions=predictions if "predictions" in self.needs else None,
            tracker=None, ground_truth=self.pool.ground_truth if "ground_truth" in self.needs else None,
            labeled_class_counts=self.labeled_class_counts(state),
            evaluation={k: self.eval_options[k] for k in ("score_threshold", "nms_iou", "matching")})
        if "tracks" in self.needs:
            tr = self.tracker()
            if hasattr(tr, "reset"):
                tr.reset()
            ctx.tracker = tr
        scores = np.asarray(self.acquisition.score(ctx), np.float64)
        if scores.shape != candidates.shape or not np.all(np.isfinite(scores)):
            raise RuntimeError(f"acquisition {self.acquisition_name} returned scores of shape {scores.shape} "
                               f"(finite: {bool(np.all(np.isfinite(scores)))}) for {len(candidates)} candidates")
        t_acquire = time.perf_counter() - t0
        t0 = time.perf_counter()
        selected = select(scores, candidates, self.protocol.budget, state, self.video_of_frames, k=self.k,
                          per_video=self.per_video, rng=step_rng(self.seed, c, "select"))
        t_select = time.perf_counter() - t0
        if len(selected) < self.protocol.budget:
            self.log(f"cycle {c}: warning: only {len(selected)} of {self.protocol.budget} frames could be "
                     f"selected (temporal exclusion k={self.k})")
        # real errors of the selected frames, AFTER selection (never seen by the acquisition)
        t0 = time.perf_counter()
        if predictions is not None:
            sel_preds = {int(i): predictions[int(i)] for i in selected}
        else:
            sel_preds = dict(zip((int(i) for i in selected), self.predict(det, self.pool, selected, "predict selected")))
        t_predict += time.perf_counter() - t0
        errors = errors_of_frames(selected, sel_preds, self.pool.ground_truth, self.num_classes,
                                  score_threshold=self.eval_options["score_threshold"],
                                  nms_iou=self.eval_options["nms_iou"], matching=self.eval_options["matching"])
        pos = np.searchsorted(candidates, selected)
        logs = {}
        for key, value in ctx.log.items():
            arr = np.asarray(value)
            if arr.shape[:1] == candidates.shape and arr.dtype.kind in "biuf":
                logs[f"log_{key}"] = arr
        times = np.array([t_predict, t_acquire, t_select])
        atomic_write(d / "selection.npz", lambda f: np.savez(
            f, candidates=candidates, scores=scores, selected=selected, selected_scores=scores[pos],
            real_fp=errors[:, 0], real_fn=errors[:, 1], budget=self.protocol.budget, times=times, **logs))
        return self.read_selection(c)

    def read_selection(self, c: int) -> dict:
        with np.load(self.cycle_dir(c) / "selection.npz") as z:
            return {k: z[k] for k in z.files}

    # ---- the loop
    def row(self, c: int, state: ALState) -> dict:
        d = self.cycle_dir(c)
        train, ev = read_json(d / "train.json"), read_json(d / "eval.json")
        n = int(state.labeled_mask.sum())
        row = {"cycle": c, "acquisition": self.acquisition_name, "seed": self.seed,
               "labeled": n, "labeled_fraction": n / len(self.pool), "pool_frames": len(self.pool),
               "mAP": ev["mAP"], "AP": ev["AP"],
               "time_train_s": train["time_s"], "time_evaluate_s": ev["time_s"],
               "time_predict_s": None, "time_acquire_s": None, "time_select_s": None,
               "budget": None, "selected": None, "shortfall": None,
               "selected_real_fp_mean": None, "selected_real_fn_mean": None, "selected_score_mean": None,
               "log": {}}
        if c < self.protocol.cycles:
            sel = self.read_selection(c)
            m = len(sel["selected"])
            pos = np.searchsorted(sel["candidates"], sel["selected"])
            row.update({
                "time_predict_s": float(sel["times"][0]), "time_acquire_s": float(sel["times"][1]),
                "time_select_s": float(sel["times"][2]), "budget": int(sel["budget"]), "selected": m,
                "shortfall": int(sel["budget"]) - m,
                "selected_real_fp_mean": float(sel["real_fp"].mean()) if m else None,
                "selected_real_fn_mean": float(sel["real_fn"].mean()) if m else None,
                "selected_score_mean": float(sel["selected_scores"].mean()) if m else None,
                "log": {k[4:]: float(sel[k][pos].mean()) if m else None for k in sel if k.startswith("log_")}})
        return row

    def write_metrics(self) -> list[dict]:
        rows = []
        c = 0
        while (self.work_dir / f"cycle_{c:03d}" / "row.json").is_file():
            rows.append(read_json(self.work_dir / f"cycle_{c:03d}" / "row.json"))
            c += 1
        text = "".join(json.dumps(r, sort_keys=True) + "\n" for r in rows)
        atomic_write(self.work_dir / "metrics.jsonl", lambda f: f.write(text), "w")
        return rows

    def run(self) -> dict:
        """Run (or resume) the experiment; returns ``{"rows": [...], "reference": {...} | None}``."""
        import torch

        if self.threads:
            torch.set_num_threads(int(self.threads))
        self._start_work_dir()
        P = self.protocol
        self.log(f"{'new' if self.fresh else 'resuming'} experiment in {self.work_dir}: {self.acquisition_name}, "
                 f"seed {self.seed}, pool {len(self.pool)} frames / {self.pool.n_videos} videos, "
                 f"initial {P.initial} + {P.cycles} x {P.budget} frames, k={self.k}, per_video={self.per_video}")
        if self.only == "reference":
            return {"rows": [], "reference": self.run_reference()}
        if not self.state_path(0).is_file():
            state = ALState(len(self.pool))
            state.reveal(initial_labeled(len(self.pool), P.initial, self.video_of_frames, seed=self.seed,
                                         k=P.k, per_video=P.per_video), 0)
            self.save_state(state, 0)
        for c in range(P.cycles + 1):
            d = self.cycle_dir(c)
            state = self.load_state(c)
            if (d / "row.json").is_file():
                continue
            labeled = state.labeled
            if c == 0 and self.cycle0_from is not None and not (d / "train.json").is_file():
                self._import_cycle0()
            if not (d / "train.json").is_file() or not (d / "model.pt").is_file():
                start = None
                if c > 0 and P.train_from == "previous":
                    start = self.work_dir / f"cycle_{c - 1:03d}" / "model.pt"
                self.log(f"cycle {c}: train on {len(labeled)} frames "
                         f"({'fine-tune cycle ' + str(c - 1) if start else 'from the config start weights'})")
                info = self._train(labeled, c, d, start=start, step="train")
                self.log(f"cycle {c}: trained in {info['time_s']:.1f} s")
            if c > 0:  # the previous cycle's checkpoint is no longer needed
                (self.work_dir / f"cycle_{c - 1:03d}" / "model.pt").unlink(missing_ok=True)
            if not (d / "eval.json").is_file():
                n_eval = min(len(self.test), self.eval_options["max_frames"] or len(self.test))
                self.log(f"cycle {c}: evaluate on {n_eval} of the {len(self.test)} test frames")
                ev = self.evaluate(self.detector(c))
                write_json(d / "eval.json", ev)
            ev = read_json(d / "eval.json")
            self.log(f"cycle {c}: mAP@0.5 {ev['mAP'] if ev['mAP'] is not None else float('nan'):.4f} "
                     f"with {len(labeled)} labeled frames")
            if self.only == "cycle0":
                write_json(self.work_dir / CYCLE0_FILE, self.cycle0_key())
                self.log(f"cycle 0 done: {self.work_dir / CYCLE0_FILE} (shared with --cycle0-from)")
                return {"rows": [], "reference": None}
            if c < P.cycles:
                if not (d / "selection.npz").is_file():
                    self.acquire(c, state)
                sel = self.read_selection(c)
                nxt = ALState(len(self.pool))
                nxt.load_state_dict(state.state_dict())
                nxt.reveal(sel["selected"], c + 1)
                self.log(f"cycle {c}: selected {len(sel['selected'])} frames "
                         f"(real FP mean {sel['real_fp'].mean() if len(sel['real_fp']) else float('nan'):.2f})")
                self.save_state(nxt, c + 1)
            write_json(d / "row.json", self.row(c, state))
            self.write_metrics()
        rows = self.write_metrics()
        reference = self.run_reference() if P.reference else None
        self.log(f"metrics: {self.work_dir / 'metrics.jsonl'}")
        return {"rows": rows, "reference": reference}

    def run_reference(self) -> dict:
        """Train once on the whole pool from the start weights and evaluate (thesis Table 2.2 "All data")."""
        path = self.work_dir / "reference.json"
        if path.is_file():
            return read_json(path)
        d = self.work_dir / "reference"
        d.mkdir(exist_ok=True)
        if not (d / "train.json").is_file() or not (d / "model.pt").is_file():
            self.log(f"reference: train on all {len(self.pool)} pool frames")
            self._train(np.arange(len(self.pool)), -1, d, start=None, step="reference")
        det = self._new_detector(-1, "reference")
        det.load_weights(d / "model.pt")
        self.log("reference: evaluate")
        ev = self.evaluate(det)
        train = read_json(d / "train.json")
        ref = {"acquisition": "all_data", "seed": self.seed, "labeled": len(self.pool), "labeled_fraction": 1.0,
               "mAP": ev["mAP"], "AP": ev["AP"], "time_train_s": train["time_s"], "time_evaluate_s": ev["time_s"]}
        write_json(path, ref)
        self.log(f"reference: mAP@0.5 {ev['mAP'] if ev['mAP'] is not None else float('nan'):.4f} "
                 f"-> {path}")
        return read_json(path)


def run_experiment(cfg: dict, work_dir: str | os.PathLike, seed: int, **kwargs: Any) -> dict:
    """``Experiment(cfg, work_dir, seed, **kwargs).run()``."""
    return Experiment(cfg, work_dir, seed, **kwargs).run()
