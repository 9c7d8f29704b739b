"""Run an AL comparison: every method config of a folder x seeds, plus the all-data reference.

    python tools/run_grid.py configs/al/cpu --seeds 0,1,2 --work-dir work_dirs/grid-cpu \\
        [--methods random-r,entropy-mean,tc-flow] [--workers 2] [--no-reference]
    python tools/run_grid.py configs/al/cpu --work-dir DIR --backend ray [--address HEAD:6379]   # on Ray

Each (method, seed) is one ``tools/run_al.py`` run in ``WORK_DIR/<method>/seed<S>``; cycle 0 is
trained once per seed (``WORK_DIR/_cycle0/seed<S>``) and shared by every method of that seed, so
the methods of a seed differ only by what they select (vidal/grid.py). Runs go to ``--workers``
local processes with ``cores / workers`` torch threads each. One progress bar; each run's output is
in ``WORK_DIR/logs/``. ``--backend ray`` (the extra ``vidal[ray]``) runs each job as a Ray task
asking for ``threads`` CPUs (``--gpus-per-run`` GPUs) on a local Ray instance or the cluster at
``--address``, with the same work dirs, logs, skipping and resume (vidal/ray_support.py: the grid
folder must be on a file system every node sees). Rerunning the same command skips finished runs
and resumes interrupted ones (also after ``kill -9``); a failing run is reported and the others go on. At the end it writes
``WORK_DIR/results.csv``, ``results.md`` (table, paired differences, label efficiency, time per
cycle, selection distance, noise floor) and ``results_curves*.png``.

Everything is checked before any training: unknown methods, seeds that do not parse, configs that
do not load or do not share one protocol, a work dir that holds another grid, a missing dataset or
flow cache: one line each.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vidal.cli import one_line_errors  # noqa: E402


def preflight(methods: dict, seeds: list[int], grid_dir: Path, threads: int):
    """Load every config and build every run's Experiment (validates the sections, the dataset, the
    tracker's inputs and the run's work dir; no training). Returns (first cfg, cycles, protocol text)."""
    from vidal.config import ConfigError, load_config
    from vidal.grid import GridError
    from vidal.loop import Experiment

    protocol, first_cfg, cycles = None, None, None
    first = next(iter(methods))
    for m, path in methods.items():
        try:
            cfg = load_config(path)
        except ConfigError as e:
            raise GridError(str(e)) from None
        for s in seeds:
            exp = Experiment(cfg, grid_dir / m / f"seed{s}", s, resume=True, progress=False, threads=threads)
            key = exp.cycle0_key()["config"]
            if protocol is None:
                protocol, first_cfg, cycles = key, cfg, exp.protocol.cycles
            elif key != protocol:
                raise GridError(f"{path}: its protocol (every section but acquisition and tracker) differs from "
                                f"{methods[first]}'s; a grid compares acquisitions under one protocol")
    return first_cfg, cycles, protocol


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("config_dir", type=click.Path())
@click.option("--seeds", default="0,1,2", show_default=True, help="Comma-separated experiment seeds.")
@click.option("--work-dir", required=True, type=click.Path(file_okay=False), help="Folder of the grid.")
@click.option("--methods", default=None, help="Comma-separated method names (config file stems); default: all.")
@click.option("--workers", type=int, default=2, show_default=True,
              help="Runs at once (local processes); torch threads per run = cores / workers.")
@click.option("--reference/--no-reference", default=True, show_default=True,
              help="Also train the all-data reference once per seed.")
@click.option("--report-name", default="results", show_default=True, help="Prefix of the report files.")
@click.option("--metric", type=click.Choice(["map50_all_scores", "map50"]), default="map50_all_scores",
              show_default=True, help="What the report ranks on (the other is reported beside): VOC AP@0.5 over "
                                      "every detection, or the thesis's AP@0.5 of detections scored >= 0.5.")
@click.option("--backend", type=click.Choice(["local", "ray"]), default="local", show_default=True,
              help="local: worker processes on this machine; ray: Ray tasks (pip install 'vidal[ray]').")
@click.option("--address", default=None, help="--backend ray: the Ray cluster (HEAD:6379); default: a local one.")
@click.option("--gpus-per-run", type=float, default=0.0, show_default=True,
              help="--backend ray: GPUs each run asks for.")
def main(config_dir, seeds, work_dir, methods, workers, reference, report_name, metric, backend, address,
         gpus_per_run):
    """Run every method of CONFIG_DIR for every seed (resumable), then write the report."""
    from tqdm import tqdm

    from vidal.config import ConfigError
    from vidal.grid import (GRID_FORMAT, GridError, GridRunner, check_grid_dir, choose_methods,
                            discover_methods, parse_seeds, plan, threads_per_worker)
    from vidal.locking import FolderLock, FolderLockedError
    from vidal.loop import ExperimentError
    from vidal.ray_support import RayMissingError, init_ray, require_ray
    from vidal.results import ResultsError, write_grid_report

    grid_dir = Path(work_dir)
    with one_line_errors(GridError, ConfigError, ExperimentError, FileNotFoundError, ValueError, FolderLockedError,
                         RayMissingError):
        if backend == "ray":
            require_ray()  # before any work
        chosen = choose_methods(discover_methods(config_dir), methods)
        seed_list = parse_seeds(seeds)
        threads = threads_per_worker(workers)
        if (grid_dir / "grid.json").is_file():  # a resumed grid keeps its thread count (bit-identical runs)
            import json

            threads = int(json.loads((grid_dir / "grid.json").read_text()).get("threads", threads))
        cfg, cycles, protocol = preflight(chosen, seed_list, grid_dir, threads)
        identity = {"format": GRID_FORMAT, "configs": str(Path(config_dir).resolve()), "protocol": protocol,
                    "threads": threads}
        identity = check_grid_dir(grid_dir, identity)
        FolderLock(grid_dir, "tools/run_grid.py").acquire()  # held until the process ends (even kill -9)
    jobs = plan(chosen, seed_list, grid_dir, reference=reference)
    click.echo(f"grid {grid_dir}: {len(chosen)} methods x {len(seed_list)} seeds"
               f"{' + all-data reference' if reference else ''} ({len(jobs)} jobs with the shared cycle 0 of each "
               f"seed), {workers} workers x {threads} threads; logs in {grid_dir / 'logs'}", err=True)
    t0 = time.perf_counter()
    bar = tqdm(total=len(jobs), desc="grid", unit="run", dynamic_ncols=True)

    def on_event(job, text):
        if text in ("done", "failed", "skipped") or text.startswith("skipped"):
            bar.update(1)
            bar.write(f"{job.name:<34} {text:<8} {job.message}", file=sys.stderr)
        elif text == "started":
            bar.write(f"{job.name:<34} started", file=sys.stderr)
        running = [j.name for j in jobs if j.state == "running"]
        bar.set_postfix_str(", ".join(running)[:80])

    if backend == "ray":
        from vidal.grid import RayGridRunner

        init_ray(address, num_cpus=workers * threads)
        runner = RayGridRunner(jobs, workers=workers, threads=threads, cycles=cycles, log_dir=grid_dir / "logs",
                               on_event=on_event, gpus=gpus_per_run)
    else:
        runner = GridRunner(jobs, workers=workers, threads=threads, cycles=cycles, log_dir=grid_dir / "logs",
                            on_event=on_event)
    try:
        runner.run()
    except KeyboardInterrupt:
        runner.stop()
        bar.close()
        raise click.ClickException("interrupted; rerun the same command to resume every run where it stopped")
    finally:
        bar.close()
    counts = runner.counts()
    click.echo(f"grid finished in {(time.perf_counter() - t0) / 60:.1f} min: {counts['done']} done, "
               f"{counts['failed']} failed, {counts['skipped']} skipped", err=True)
    for j in jobs:
        if j.state in ("failed", "skipped"):
            click.echo(f"  {j.state}: {j.name}: {j.message}", err=True)
    try:
        paths = write_grid_report(grid_dir, cfg, list(chosen), seed_list, cycles, grid_dir, name=report_name,
                                  metric=metric)
        click.echo(f"wrote {', '.join(str(p) for p in paths.values())}")
    except ResultsError as e:
        click.echo(f"no report: {e}", err=True)
    if counts["failed"] or counts["skipped"]:
        sys.exit(1)


if __name__ == "__main__":
    main()
