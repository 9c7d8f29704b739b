"""The main job: a small end-to-end AL comparison on a generated dataset, on CPU.

    python tools/demo.py [--out work_dirs/demo] [--methods random-r,entropy-mean,tc-flow] [--seeds 0]

Steps (each skipped when its output exists, so an interrupted demo continues where it stopped):

1. generate the demo dataset (0.5 % of the SYNTHIA-AL preset at 320x240) into data/synthia-al-demo;
2. compute its DIS optical-flow cache (train.flow.h5) for temporal coherence;
3. run the AL experiment of ``configs/al/demo/<method>_...py`` for every method and seed
   (tools/run_al.py, resumable);
4. plot the learning curves (mAP@0.5 vs labeled frames, mean ± std over seeds) and write the
   thesis-style table (markdown + CSV).

Prints where everything went and how long each step took.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import click

REPO = Path(__file__).resolve().parents[1]
DATA = Path("data/synthia-al-demo")
CONFIGS = REPO / "configs" / "al" / "demo"
METHODS = ("random-r", "entropy-mean", "tc-flow")


def config_of(method: str) -> Path:
    found = sorted(CONFIGS.glob(f"{method}_*.py"))
    if not found:
        valid = sorted({p.name.split("_")[0] for p in CONFIGS.glob("*.py")})
        raise click.ClickException(f"no demo config for method {method!r} in {CONFIGS}; valid: {', '.join(valid)}")
    return found[0]


def step(title: str, cmd: list[str], timings: dict[str, float]) -> None:
    click.echo(f"\n== {title}\n$ {' '.join(cmd)}", err=True)
    t = time.perf_counter()
    res = subprocess.run([sys.executable, *cmd[1:]] if cmd[0] == "python" else cmd)
    timings[title] = time.perf_counter() - t
    if res.returncode:
        raise click.ClickException(f"step '{title}' failed (exit {res.returncode}); fix the error above and rerun "
                                   f"the same command: finished steps are kept")


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--out", default="work_dirs/demo", show_default=True, type=click.Path(file_okay=False),
              help="Folder of the AL runs, the curve and the table.")
@click.option("--methods", default=",".join(METHODS), show_default=True,
              help="Acquisition methods (configs/al/demo/<method>_*.py).")
@click.option("--seeds", default="0", show_default=True, help="Comma-separated experiment seeds.")
@click.option("--workers", type=int, default=2, show_default=True, help="Processes generating the dataset.")
def main(out, methods, seeds, workers):
    """Generate a small dataset, run a short AL comparison on CPU, plot the curves and the table."""
    t0 = time.perf_counter()
    out = Path(out)
    methods = [m.strip() for m in methods.split(",") if m.strip()]
    seeds = [int(s) for s in seeds.split(",")]
    configs = {m: config_of(m) for m in methods}
    timings: dict[str, float] = {}
    tools = REPO / "tools"
    if not (DATA / "train.h5").is_file() or not (DATA / "test.h5").is_file():
        step("generate dataset", ["python", str(tools / "generate.py"), "--preset", "synthia-al", "--scale", "0.005",
                                  "--resolution", "320x240", "--workers", str(workers), "--out", str(DATA),
                                  "--overwrite"], timings)
    if any(m.startswith("tc-flow") for m in methods) and not (DATA / "train.flow.h5").is_file():
        step("optical flow (DIS)", ["python", str(tools / "compute_flow.py"), str(DATA / "train.h5")], timings)
    runs = []
    for m in methods:
        for s in seeds:
            run_dir = out / f"{m}_seed{s}"
            cmd = ["python", str(tools / "run_al.py"), str(configs[m]), "--work-dir", str(run_dir), "--seed", str(s),
                   "--threads", "2"]
            if run_dir.exists():
                cmd.append("--resume")
            step(f"AL {m} seed {s}", cmd, timings)  # --resume skips every finished step
            runs.append(str(run_dir))
    step("learning curves", ["python", str(tools / "plot_curves.py"), *runs, "--out", str(out / "curves.png"),
                             "--title", "demo: 0.5 % SYNTHIA-AL, EfficientNet-Lite0 FPN, CPU"], timings)
    step("table", ["python", str(tools / "make_table.py"), *runs, "--out", str(out / "table")], timings)
    click.echo("\n" + (out / "table.md").read_text() if (out / "table.md").is_file() else "")
    for title, sec in timings.items():
        click.echo(f"{title:<28} {sec / 60:6.1f} min")
    click.echo(f"total {(time.perf_counter() - t0) / 60:.1f} min")
    click.echo(f"wrote {out / 'curves.png'}, {out / 'table.md'}, {out / 'table.csv'} and the runs in {out}/")


if __name__ == "__main__":
    main()
