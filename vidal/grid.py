"""A grid of AL runs: methods x seeds under one protocol, plus the all-data reference.

A *grid folder* of configs (e.g. ``configs/al/cpu``) holds one file per method (``random-r.py``,
``tc-flow.py``, ...; the method's name is the file's stem) that all share one protocol (files whose
name starts with ``_`` are bases, not methods). :func:`plan` turns it into jobs, each one
``tools/run_al.py`` process in its own work dir::

    GRID/grid.json                 what the grid is (configs, protocol, threads): a restart checks it
    GRID/_cycle0/seedS/            cycle 0 of seed S, trained once (run_al.py --only cycle0)
    GRID/<method>/seedS/           one AL run, starting from the shared cycle 0 (--cycle0-from)
    GRID/all-data/seedS/           the all-data reference of seed S (--only reference)
    GRID/logs/<job>.log            each job's output

Every method of a seed shares the initial labeled set, the initial weights and the cycle-0 model
(they depend only on the seed and the protocol: vidal/loop.py, "Shared cycle 0"), so the
differences between methods of one seed are paired. :class:`GridRunner` runs the jobs in local
worker processes (``workers x threads`` = the cores), skips finished jobs, resumes interrupted ones
(``--resume``: a killed grid restarts every run where it stopped), reports a failing job without
stopping the others, and kills its workers when it dies (``PR_SET_PDEATHSIG``).
"""

from __future__ import annotations

import ctypes
import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from vidal.cli import MAX_SEED

GRID_FORMAT = "vidal-grid-v1"
REFERENCE = "all-data"
CYCLE0_DIR = "_cycle0"
RUN_AL = Path(__file__).resolve().parents[1] / "tools" / "run_al.py"


class GridError(ValueError):
    """The grid cannot start: one line naming the input and the fix."""


# ----------------------------------------------------------------------------- inputs
def discover_methods(folder: str | os.PathLike) -> dict[str, Path]:
    """``{method: config path}`` of a grid folder (every ``*.py`` not starting with ``_``)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise GridError(f"{folder}: not a folder of method configs (e.g. configs/al/cpu)")
    found = {p.stem: p for p in sorted(folder.glob("*.py")) if not p.name.startswith("_")}
    if not found:
        raise GridError(f"{folder}: no method configs (*.py files not starting with '_')")
    return found


def choose_methods(available: dict[str, Path], wanted: str | None) -> dict[str, Path]:
    """The methods named in ``wanted`` (comma-separated; None: all), in the order given."""
    if wanted is None:
        return dict(available)
    names = [m.strip() for m in wanted.split(",") if m.strip()]
    if not names:
        raise GridError("--methods is empty; give comma-separated names, e.g. random-r,entropy-mean")
    unknown = [m for m in names if m not in available]
    if unknown:
        raise GridError(f"unknown method {', '.join(map(repr, unknown))}; valid: {', '.join(available)}")
    if len(set(names)) != len(names):
        raise GridError(f"--methods names a method twice: {wanted}")
    return {m: available[m] for m in names}


def parse_seeds(text: str) -> list[int]:
    """``"0,1,2"`` -> ``[0, 1, 2]``; anything else is a one-line error."""
    parts = [p.strip() for p in str(text).split(",")]
    if not parts or any(not p.isdigit() for p in parts):
        raise GridError(f"--seeds must be comma-separated integers >= 0 like 0,1,2, got {text!r}")
    seeds = [int(p) for p in parts]
    if max(seeds) > MAX_SEED:
        raise GridError(f"--seeds: {max(seeds)} is out of range: use 0..{MAX_SEED}")
    if len(set(seeds)) != len(seeds):
        raise GridError(f"--seeds names a seed twice: {text!r}")
    return seeds


def threads_per_worker(workers: int, cores: int | None = None) -> int:
    """torch threads of each worker so that ``workers x threads`` = the cores (at least 1)."""
    cores = cores or len(os.sched_getaffinity(0))
    if workers < 1:
        raise GridError(f"--workers must be >= 1, got {workers}")
    return max(1, cores // workers)


# ----------------------------------------------------------------------------- jobs
@dataclasses.dataclass
class Job:
    """One run_al.py process. ``kind``: "cycle0", "method" or "reference"."""

    kind: str
    method: str
    seed: int
    config: Path
    work_dir: Path
    after: str | None = None  # name of the job that must finish first
    state: str = "pending"    # pending | running | done | failed | skipped
    message: str = ""

    @property
    def name(self) -> str:
        label = {"cycle0": "cycle0", "reference": REFERENCE}.get(self.kind, self.method)
        return f"{label}_seed{self.seed}"

    def finished(self, cycles: int) -> bool:
        """The job's final file exists (written atomically by vidal.loop as its last step)."""
        if self.kind == "cycle0":
            return (self.work_dir / "cycle0.json").is_file()
        if self.kind == "reference":
            return (self.work_dir / "reference.json").is_file()
        return (self.work_dir / f"cycle_{cycles:03d}" / "row.json").is_file()

    def command(self, threads: int, cycle0_dirs: dict[int, Path], script: Path = RUN_AL) -> list[str]:
        cmd = [sys.executable, str(script), str(self.config), "--work-dir", str(self.work_dir),
               "--seed", str(self.seed), "--threads", str(threads), "--quiet"]
        if self.kind == "cycle0":
            cmd += ["--only", "cycle0"]
        elif self.kind == "reference":
            cmd += ["--only", "reference"]
        else:
            cmd += ["--cycle0-from", str(cycle0_dirs[self.seed])]
        if (self.work_dir / "experiment.json").is_file():
            cmd.append("--resume")
        return cmd


def plan(methods: dict[str, Path], seeds: Sequence[int], grid_dir: Path, *, reference: bool) -> list[Job]:
    """Jobs in the order they are started: the cycle 0 of every seed first, then each method over
    all seeds, in the order given (put the positive control first, e.g. ``random-r,oracle-fp``:
    its paired differences are complete early), the references last (they train on the whole
    pool, the longest jobs)."""
    first = next(iter(methods.values()))
    jobs = [Job("cycle0", "cycle0", s, first, grid_dir / CYCLE0_DIR / f"seed{s}") for s in seeds]
    for m, cfg in methods.items():
        for s in seeds:
            jobs.append(Job("method", m, s, cfg, grid_dir / m / f"seed{s}", after=f"cycle0_seed{s}"))
    if reference:
        jobs += [Job("reference", REFERENCE, s, first, grid_dir / REFERENCE / f"seed{s}") for s in seeds]
    return jobs


# ----------------------------------------------------------------------------- the grid folder
def check_grid_dir(grid_dir: Path, identity: dict[str, Any]) -> dict[str, Any]:
    """Create ``grid.json`` or check that the folder holds this grid. Returns the recorded identity
    (its ``threads`` win over a new ``--workers``, so that a resumed run stays bit-identical)."""
    path = grid_dir / "grid.json"
    if path.is_file():
        try:
            old = json.loads(path.read_text())
        except (OSError, ValueError) as e:
            raise GridError(f"{path}: unreadable ({e}); choose another --work-dir") from None
        differ = [k for k in ("format", "configs", "protocol") if old.get(k) != identity.get(k)]
        if differ:
            raise GridError(f"{grid_dir} holds another grid (its {', '.join(differ)} differ: made from "
                            f"{old.get('configs')}); choose another --work-dir")
        return old
    if grid_dir.exists() and any(grid_dir.iterdir()):
        raise GridError(f"{grid_dir} is not empty and holds no grid (no grid.json); choose another --work-dir")
    grid_dir.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name("grid.json.tmp")
    tmp.write_text(json.dumps(identity, indent=1, sort_keys=True) + "\n")
    os.replace(tmp, path)
    return identity


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """Linux: SIGKILL this worker when the grid process dies, so a killed grid leaves no orphan
    writing into a work dir that the restarted grid resumes."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG = 1
    except OSError:
        pass


# ----------------------------------------------------------------------------- running
class GridRunner:
    """Runs :class:`Job` s in ``workers`` local processes of ``threads`` torch threads each."""

    def __init__(self, jobs: list[Job], *, workers: int, threads: int, cycles: int, log_dir: Path,
                 on_event: Callable[[Job, str], None] | None = None, poll_s: float = 0.5, script: Path = RUN_AL):
        self.jobs, self.workers, self.threads, self.cycles = jobs, workers, threads, cycles
        self.script = Path(script)  # the run_al.py of each job (tests: one with a test-double backend)
        self.log_dir, self.poll_s = log_dir, poll_s
        self.on_event = on_event or (lambda job, text: None)
        self.cycle0_dirs = {j.seed: j.work_dir for j in jobs if j.kind == "cycle0"}
        self.by_name = {j.name: j for j in jobs}
        self.running: dict[str, tuple[subprocess.Popen, float, Any]] = {}

    def counts(self) -> dict[str, int]:
        out = {k: 0 for k in ("pending", "running", "done", "failed", "skipped")}
        for j in self.jobs:
            out[j.state] += 1
        return out

    def _ready(self, job: Job) -> bool | None:
        """True when ``job`` can start, False when it must wait, None when its prerequisite failed."""
        if job.after is None:
            return True
        dep = self.by_name.get(job.after)
        if dep is None or dep.state == "done":
            return True
        if dep.state in ("failed", "skipped"):
            return None
        return False

    def _start(self, job: Job) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log = open(self.log_dir / f"{job.name}.log", "a")
        env = {**os.environ, "OMP_NUM_THREADS": str(self.threads), "MKL_NUM_THREADS": str(self.threads),
               "PYTHONUNBUFFERED": "1"}
        cmd = job.command(self.threads, self.cycle0_dirs, self.script)
        log.write(f"$ {' '.join(cmd)}\n")
        log.flush()
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, preexec_fn=_die_with_parent)
        self.running[job.name] = (proc, time.perf_counter(), log)
        job.state = "running"
        self.on_event(job, "started")

    def _finish(self, job: Job, rc: int, seconds: float) -> None:
        if rc == 0 and job.finished(self.cycles):
            job.state, job.message = "done", f"{seconds / 60:.1f} min"
        else:
            job.state = "failed"
            tail = (self.log_dir / f"{job.name}.log").read_text(errors="replace").strip().splitlines()[-1:] or [""]
            job.message = f"exit {rc}: {tail[0][:300]} (log: {self.log_dir / (job.name + '.log')})"
        self.on_event(job, job.state)

    def run(self) -> list[Job]:
        for job in self.jobs:
            if job.finished(self.cycles):
                job.state, job.message = "done", "finished before"
                self.on_event(job, "done")
        while True:
            for name, (proc, t0, log) in list(self.running.items()):
                rc = proc.poll()
                if rc is not None:
                    log.close()
                    del self.running[name]
                    self._finish(self.by_name[name], rc, time.perf_counter() - t0)
            for job in self.jobs:
                if job.state != "pending":
                    continue
                ready = self._ready(job)
                if ready is None:
                    job.state, job.message = "skipped", f"{job.after} failed"
                    self.on_event(job, "skipped")
                elif ready and len(self.running) < self.workers:
                    self._start(job)
            if not self.running and not any(j.state == "pending" for j in self.jobs):
                return self.jobs
            time.sleep(self.poll_s)

    def stop(self) -> None:
        for proc, _, log in self.running.values():
            proc.kill()
            proc.wait()
            log.close()
        self.running.clear()


# ----------------------------------------------------------------------------- Ray
def run_job_process(cmd: list[str], log_path: str, env: dict[str, str], cwd: str) -> int:
    """The body of a Ray task: run one job's ``run_al.py`` process with its output appended to
    ``log_path`` (the process dies with the Ray worker); returns its exit status."""
    Path(log_path).parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "a") as log:
        log.write(f"$ {' '.join(cmd)}\n")
        log.flush()
        return subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **env}, cwd=cwd,
                              preexec_fn=_die_with_parent).returncode


class _RayTask:
    """A running Ray task with the ``poll`` / ``kill`` / ``wait`` of a ``subprocess.Popen``."""

    def __init__(self, ray, ref):
        self.ray, self.ref, self.rc = ray, ref, None

    def poll(self) -> int | None:
        if self.rc is None and self.ray.wait([self.ref], timeout=0)[0]:
            try:
                self.rc = int(self.ray.get(self.ref))
            except Exception:  # noqa: BLE001 - the task (its worker) died: a failed job, reported by the runner
                self.rc = -1
        return self.rc

    def kill(self) -> None:
        self.ray.cancel(self.ref, force=True)

    def wait(self) -> None:
        pass


class _NoLog:
    def close(self) -> None:
        pass


class RayGridRunner(GridRunner):
    """:class:`GridRunner` whose jobs are Ray tasks (``ray`` imported and initialised by the
    caller: :func:`vidal.ray_support.init_ray`), each asking for ``threads`` CPUs and ``gpus``
    GPUs, at most ``workers`` at once. The jobs, their order, work dirs, logs, skipping of
    finished jobs and ``--resume`` of interrupted ones are the local runner's."""

    def __init__(self, jobs: list[Job], *, gpus: float = 0.0, **kwargs: Any):
        from vidal.ray_support import require_ray

        super().__init__(jobs, **kwargs)
        self.ray = require_ray()
        self.task = self.ray.remote(run_job_process)
        self.gpus = gpus

    def _start(self, job: Job) -> None:
        env = {"OMP_NUM_THREADS": str(self.threads), "MKL_NUM_THREADS": str(self.threads), "PYTHONUNBUFFERED": "1"}
        cmd = job.command(self.threads, self.cycle0_dirs, self.script)
        log = (self.log_dir / f"{job.name}.log").resolve()
        ref = self.task.options(num_cpus=self.threads, num_gpus=self.gpus).remote(cmd, str(log), env, os.getcwd())
        self.running[job.name] = (_RayTask(self.ray, ref), time.perf_counter(), _NoLog())
        job.state = "running"
        self.on_event(job, "started")
