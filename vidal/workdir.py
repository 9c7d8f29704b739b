"""The files of one AL experiment: :class:`WorkDir` (paths, atomic writes, reads, and the "is
this step done" tests that resume uses), :class:`Selection` (one cycle's ``selection.npz``) and the
readers and writers of the work dir's arrays. Nothing read here executes code: arrays are read with
``allow_pickle=False``, the rest is JSON; a file that cannot be read is a one-line
:class:`ExperimentError` naming it.

Work dir (every file written atomically, tmp + ``os.replace``)::

    config.py               resolved config (vidal.config.dump)
    experiment.json         seed, command, versions (torch, torchvision, numpy, vidal), git commit
    state_cycle_XXX.npz     ALState before training cycle XXX (cycle_of per train-split frame)
    cycle_XXX/model.pt      checkpoint after training (only the latest cycle's is kept)
    cycle_XXX/train.json    training time and losses
    cycle_XXX/eval.json     test metrics
    cycle_XXX/pool_predictions.npz   predictions on the train split (when the acquisition needs
                            them): plain arrays (vidal.detection.base.predictions_to_arrays) and
                            time_s, read with allow_pickle=False
    cycle_XXX/pool_predictions/     instead, with --launcher ddp or pool_shards=True: one npz
                            shard per video and done.json (vidal/pool_shards.py), read video by
                            video by the acquisition
    cycle_XXX/pool_embeddings.npz   frame embeddings and RoI features of the pool (need
                            "embeddings": vidal.detection.embeddings), time_s
    cycle_XXX/epoch_predictions.npz the pool predicted at the end of the last epochs of the
                            cycle's training (need "epoch_predictions", label dispersion), time_s
    cycle_XXX/selection.npz candidates, scores, selected frames, their real FP / FN, acquisition log
                            (:meth:`Selection.arrays`)
    cycle_XXX/row.json      the metrics row of the cycle
    metrics.jsonl           all rows, one per cycle
    reference.json          all-data reference (al.reference); reference/ its model and train.json
    cycle0.json             only in an ``only="cycle0"`` run: what its cycle-0 model depends on
    log.txt                 the lines printed
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from vidal.jsonsafe import json_safe
from vidal.locking import LOCK_NAME
from vidal.selection import ALState

STATE_FORMAT = "vidal-al-state-v1"
POOL_PREDICTIONS_FORMAT = "vidal-pool-predictions-v1"
CYCLE0_FILE = "cycle0.json"
#: The step directory of the all-data reference model (a cycle's is ``cycle_XXX``)
REFERENCE = "reference"


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


def read_work_file(path: Path, reader: Callable[[Path], Any]) -> Any:
    """``reader(path)``; a file of the work dir that cannot be read (truncated, not the expected
    format, a missing field) is a one-line :class:`ExperimentError` naming it and the fix."""
    try:
        return reader(Path(path))
    except Exception as e:  # noqa: BLE001 - json / zip / npz / key errors alike: name the file, one line
        msg = " ".join(str(e).split())[:200]
        raise ExperimentError(f"{path}: unreadable ({type(e).__name__}: {msg}); it was changed outside vidal: "
                              f"delete it and rerun with --resume (the step that wrote it is redone)") from None


def read_json(path: Path) -> Any:
    return read_work_file(path, lambda p: json.loads(p.read_text()))


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


# ----------------------------------------------------------------------------- the work dir


class WorkDir:
    """The files of one experiment (module docstring, "Work dir"): paths, atomic writes, reads,
    and whether a step is done (resume skips the steps whose files exist).

    A *step directory* is ``cycle_XXX`` for cycle ``c`` (an int) or ``reference`` (:data:`REFERENCE`).
    """

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)

    # ---- paths
    def step_dir(self, step: int | str, *, make: bool = False) -> Path:
        d = self.root / (step if isinstance(step, str) else f"cycle_{step:03d}")
        if make:
            d.mkdir(parents=True, exist_ok=True)
        return d

    def cycle_dir(self, c: int) -> Path:
        """``cycle_XXX``, created if missing."""
        return self.step_dir(c, make=True)

    def path(self, step: int | str, name: str) -> Path:
        return self.step_dir(step) / name

    def state_path(self, c: int) -> Path:
        return self.root / f"state_cycle_{c:03d}.npz"

    @property
    def metrics_path(self) -> Path:
        return self.root / "metrics.jsonl"

    @property
    def reference_path(self) -> Path:
        return self.root / "reference.json"

    @property
    def cycle0_path(self) -> Path:
        return self.root / CYCLE0_FILE

    # ---- is this step done
    def has_state(self, c: int) -> bool:
        return self.state_path(c).is_file()

    def trained(self, step: int | str) -> bool:
        return self.path(step, "train.json").is_file() and self.path(step, "model.pt").is_file()

    def evaluated(self, c: int) -> bool:
        return self.path(c, "eval.json").is_file()

    def selected(self, c: int) -> bool:
        return self.path(c, "selection.npz").is_file()

    def finished(self, c: int) -> bool:
        return self.path(c, "row.json").is_file()

    # ---- reads and writes
    def read(self, step: int | str, name: str) -> Any:
        return read_json(self.path(step, name))

    def write(self, step: int | str, name: str, obj: Any) -> None:
        write_json(self.step_dir(step, make=True) / name, obj)

    def save_state(self, state: ALState, c: int) -> None:
        sd = state.state_dict()
        atomic_write(self.state_path(c), lambda f: np.savez(f, format=STATE_FORMAT, cycle=c, **sd))

    def load_state(self, c: int, n_frames: int) -> ALState:
        def load(path: Path) -> ALState:
            state = ALState(n_frames)
            with np.load(path, allow_pickle=False) as z:
                state.load_state_dict({"cycle_of": z["cycle_of"]})
            return state

        return read_work_file(self.state_path(c), load)

    def read_pool_predictions(self, c: int, n_frames: int) -> tuple[list, float] | None:
        """``(predictions, time_s)`` of cycle ``c``'s ``pool_predictions.npz``, None when not
        predicted yet (the per-video form: :meth:`pool_shards`)."""
        path = self.path(c, "pool_predictions.npz")
        return read_pool_predictions(path, n_frames) if path.is_file() else None

    def stored_pool_predictions(self, c: int, video_of_frames: np.ndarray) -> tuple[list, float] | None:
        """``(predictions of every train-split frame, time_s)`` of cycle ``c`` in whichever form is
        on disk (complete per-video shards, else ``pool_predictions.npz``), None when not predicted."""
        shards = self.pool_shards(c, video_of_frames)
        if shards.done:
            return shards.predictions(), shards.time_s()
        return self.read_pool_predictions(c, len(video_of_frames))

    def pool_shards(self, c: int, video_of_frames: np.ndarray):
        """Cycle ``c``'s per-video pool predictions (:class:`vidal.pool_shards.PoolShards`)."""
        from vidal.pool_shards import DIR_NAME, PoolShards

        return PoolShards(self.path(c, DIR_NAME), video_of_frames)

    def write_pool_predictions(self, c: int, predictions: Sequence, time_s: float) -> None:
        write_pool_predictions(self.path(c, "pool_predictions.npz"), predictions, time_s)

    def write_selection(self, c: int, sel: Selection) -> None:
        atomic_write(self.path(c, "selection.npz"), lambda f: np.savez(f, **sel.arrays()))

    def read_selection(self, c: int) -> Selection:
        def load(path: Path) -> Selection:
            with np.load(path, allow_pickle=False) as z:
                return Selection.from_arrays({k: z[k] for k in z.files})

        return read_work_file(self.path(c, "selection.npz"), load)

    def write_metrics(self) -> list[dict]:
        """``metrics.jsonl`` from the ``row.json`` of the finished cycles; returns the rows."""
        rows = []
        while self.finished(len(rows)):
            rows.append(self.read(len(rows), "row.json"))
        text = "".join(json.dumps(r, sort_keys=True) + "\n" for r in rows)
        atomic_write(self.metrics_path, lambda f: f.write(text), "w")
        return rows

    def append_log(self, line: str) -> None:
        with open(self.root / "log.txt", "a") as f:
            f.write(line + "\n")

    # ---- the experiment's identity
    def check(self, config_text: str, seed: int, resume: bool) -> bool:
        """Whether the work dir is fresh (True) or holds this very experiment (False, needs
        ``resume``); anything else is a one-line :class:`ExperimentError`."""
        exp, conf = self.root / "experiment.json", self.root / "config.py"
        if not (exp.is_file() and conf.is_file()):
            if self.root.exists() and any(p.name not in ("log.txt", LOCK_NAME) for p in self.root.iterdir()):
                raise ExperimentError(f"{self.root} is not empty and holds no vidal AL experiment; "
                                      f"choose another --work-dir")
            return True
        old_seed, old_text = read_json(exp).get("seed"), conf.read_text()
        if old_text != config_text or old_seed != seed:
            diff = []
            if old_seed != seed:
                diff.append(f"seed {old_seed} vs {seed}")
            if old_text != config_text:
                changed = set(old_text.splitlines()) ^ set(config_text.splitlines())
                keys = sorted({ln.split(" = ")[0] for ln in changed if " = " in ln})
                diff.append(f"config sections {', '.join(keys)}")
            raise ExperimentError(f"{self.root} holds a different experiment ({'; '.join(diff)}); "
                                  f"choose another --work-dir")
        if not resume:
            raise ExperimentError(f"{self.root} already holds this experiment; pass --resume to continue it "
                                  f"or choose another --work-dir")
        return False

    def start(self, config_text: str, info: dict) -> None:
        """Create the work dir with ``config.py`` and ``experiment.json``."""
        self.root.mkdir(parents=True, exist_ok=True)
        atomic_write(self.root / "config.py", lambda f: f.write(config_text), "w")
        write_json(self.root / "experiment.json", info)


# ----------------------------------------------------------------------------- typed values


@dataclasses.dataclass
class Selection:
    """One cycle's selection (``selection.npz``).

    Attributes:
        candidates: int64 ``[K]`` the unlabeled frames the acquisition scored.
        scores: float64 ``[K]`` their scores.
        selected: int64 ``[m]`` the selected frames (``m <= budget``), in selection order.
        selected_scores: float64 ``[m]``; real_fp / real_fn: ``[m]`` their real false positives /
            negatives (counted after selection, never seen by the acquisition).
        budget: frames asked for.
        times: float64 ``[3]`` seconds to predict, score (acquire) and select.
        logs: per-candidate figures of the acquisition's ``ctx.log`` (arrays ``[K]``).
    """

    candidates: np.ndarray
    scores: np.ndarray
    selected: np.ndarray
    selected_scores: np.ndarray
    real_fp: np.ndarray
    real_fn: np.ndarray
    budget: int
    times: np.ndarray
    logs: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)

    def arrays(self) -> dict[str, Any]:
        """The arrays of ``selection.npz`` (logs as ``log_<name>``)."""
        return {"candidates": self.candidates, "scores": self.scores, "selected": self.selected,
                "selected_scores": self.selected_scores, "real_fp": self.real_fp, "real_fn": self.real_fn,
                "budget": self.budget, "times": self.times, **{f"log_{k}": v for k, v in self.logs.items()}}

    @classmethod
    def from_arrays(cls, z: dict[str, np.ndarray]) -> Selection:
        return cls(z["candidates"], z["scores"], z["selected"], z["selected_scores"], z["real_fp"], z["real_fn"],
                   int(z["budget"]), z["times"], {k[4:]: z[k] for k in z if k.startswith("log_")})

    def row(self) -> dict[str, Any]:
        """The selection's fields of a metrics row."""
        m = len(self.selected)
        pos = np.searchsorted(self.candidates, self.selected)
        mean = lambda a: float(a.mean()) if m else None  # noqa: E731
        return {"time_predict_s": float(self.times[0]), "time_acquire_s": float(self.times[1]),
                "time_select_s": float(self.times[2]), "budget": self.budget, "selected": m,
                "shortfall": self.budget - m, "selected_real_fp_mean": mean(self.real_fp),
                "selected_real_fn_mean": mean(self.real_fn), "selected_score_mean": mean(self.selected_scores),
                "log": {k: mean(v[pos]) for k, v in self.logs.items()}}
