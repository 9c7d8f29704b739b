"""Learning curves of AL runs: mAP@0.5 vs labeled frames (or labeled boxes, ``--x boxes``: a
frame's annotation cost grows with its boxes), mean ± std over seeds, one curve per method (thesis
Fig. 2.4). Runs are grouped by the acquisition of their saved config.

    python tools/plot_curves.py runs/*/seed* --out runs/curves.png [--x frames|boxes|fraction]
"""

from __future__ import annotations

import click

from vidal.cli import one_line_errors
from vidal.report import ReportError, curves, load_runs, plot_curves


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("run_dirs", nargs=-1, required=True, type=click.Path(file_okay=False))
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="Figure file (.png, .pdf, .svg).")
@click.option("--x", "x", type=click.Choice(["frames", "boxes", "fraction", "labeled"]), default="frames",
              show_default=True, help="x axis: labeled frames, labeled (ground-truth) boxes, or % of the pool "
                                      "(labeled: same as frames).")
@click.option("--title", default=None, help="Figure title.")
def main(run_dirs, out, x, title):
    """Plot the learning curves of RUN_DIRS (work dirs of tools/run_al.py) into --out."""
    with one_line_errors(ReportError):
        runs = load_runs(run_dirs)
        path = plot_curves(runs, out, x=x, title=title)
    for label, c in curves(runs).items():
        click.echo(f"{label}: {c['n']} seed(s), {len(c['cycle'])} cycles, final mAP@0.5 "
                   f"{c['mean'][-1]:.4f} ± {c['std'][-1]:.4f}")
    click.echo(f"wrote {path}")


if __name__ == "__main__":
    main()
