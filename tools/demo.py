"""The main job: a small end-to-end AL comparison on a generated dataset, on CPU.

    python tools/demo.py [--out work_dirs/demo] [--methods random-r,entropy-mean,tc-flow] [--seeds 0]

Steps (each skipped when its output exists, so an interrupted demo continues where it stopped):

1. generate the pool (0.5 % of the SYNTHIA-AL preset at 320x240, data/synthia-al-demo) and the test
   split (2 % of the preset at 320x240, data/synthia-al-2pct-240);
2. compute the pool's DIS optical-flow cache (train.flow.h5) for temporal coherence;
3. run the AL grid of ``configs/al/demo`` (tools/run_grid.py: the CPU protocol of configs/al/cpu,
   shortened; cycle 0 trained once and shared by the methods; resumable);
4. write the learning curves (PNG) and the table (markdown + CSV) of the grid.

One seed is a demonstration; ``--seeds 0,1,2`` gives mean ± std and paired differences, and
``python tools/run_grid.py configs/al/cpu --seeds 0,1,2 ...`` runs the real comparison
(docs/results.md).
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import click

REPO = Path(__file__).resolve().parents[1]
POOL = Path("data/synthia-al-demo")
TEST = Path("data/synthia-al-2pct-240")
CONFIGS = REPO / "configs" / "al" / "demo"
METHODS = ("random-r", "entropy-mean", "tc-flow")


def step(title: str, cmd: list[str], timings: dict[str, float]) -> None:
    click.echo(f"\n== {title}\n$ {' '.join(cmd)}", err=True)
    t = time.perf_counter()
    res = subprocess.run([sys.executable, *cmd[1:]] if cmd[0] == "python" else cmd)
    timings[title] = time.perf_counter() - t
    if res.returncode:
        raise click.ClickException(f"step '{title}' failed (exit {res.returncode}); fix the error above and rerun "
                                   f"the same command: finished steps are kept")


def generate(out: Path, scale: str, workers: int, timings: dict[str, float]) -> None:
    if (out / "train.h5").is_file() and (out / "test.h5").is_file():
        return
    step(f"generate {out}", ["python", str(REPO / "tools" / "generate.py"), "--preset", "synthia-al", "--scale", scale,
                             "--resolution", "320x240", "--workers", str(workers), "--out", str(out), "--overwrite",
                             "--quiet"], timings)


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--out", default="work_dirs/demo", show_default=True, type=click.Path(file_okay=False),
              help="Folder of the grid: runs, curves and table.")
@click.option("--methods", default=",".join(METHODS), show_default=True,
              help="Acquisition methods (configs/al/demo/<method>.py).")
@click.option("--seeds", default="0", show_default=True, help="Comma-separated experiment seeds.")
@click.option("--workers", type=int, default=2, show_default=True, help="Processes (generation and AL runs).")
def main(out, methods, seeds, workers):
    """Generate a small dataset, run a short AL comparison on CPU, plot the curves and the table."""
    from vidal.cli import one_line_errors
    from vidal.grid import GridError, choose_methods, discover_methods, parse_seeds, threads_per_worker

    with one_line_errors(GridError):  # bad options stop here, before any data is generated
        choose_methods(discover_methods(CONFIGS), methods)
        parse_seeds(seeds)
        threads_per_worker(workers)
    t0 = time.perf_counter()
    out = Path(out)
    timings: dict[str, float] = {}
    tools = REPO / "tools"
    generate(POOL, "0.005", workers, timings)
    generate(TEST, "0.02", workers, timings)
    if "tc-flow" in methods and not (POOL / "train.flow.h5").is_file():
        step("optical flow (DIS)", ["python", str(tools / "compute_flow.py"), str(POOL / "train.h5")], timings)
    step("AL grid", ["python", str(tools / "run_grid.py"), str(CONFIGS), "--seeds", seeds, "--methods", methods,
                     "--workers", str(workers), "--no-reference", "--work-dir", str(out)], timings)
    table = out / "results.md"
    if table.is_file():
        click.echo("\n" + table.read_text().split("\n\n| Method | Frames to")[0].split("\n\n| Method | Train")[0])
    for title, sec in timings.items():
        click.echo(f"{title:<40} {sec / 60:6.1f} min")
    click.echo(f"total {(time.perf_counter() - t0) / 60:.1f} min")
    click.echo(f"wrote {out / 'results_curves.png'}, {out / 'results.md'}, {out / 'results.csv'} and the runs in {out}/")
    if len(seeds.split(",")) == 1:
        click.echo("one seed is a demonstration, not a comparison: --seeds 0,1,2 gives mean ± std and paired "
                   "differences; docs/results.md holds the full CPU comparison")


if __name__ == "__main__":
    main()
