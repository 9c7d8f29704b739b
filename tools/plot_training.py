"""Plot test mAP@0.5 against training minutes for one or more tools/train.py work dirs.

    python tools/plot_training.py work_dirs/curve-effl0-imagenet work_dirs/curve-effl0-scratch \\
        --out docs/figures/train_curves.png [--target 0.5 --budget-minutes 10]
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from vidal.cli import one_line_errors


def read_curve(work_dir: Path) -> tuple[list[float], list[float]]:
    path = work_dir / "metrics.jsonl"
    if not path.is_file():
        raise ValueError(f"{path}: not found; is {work_dir} a tools/train.py work dir?")
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    rows = [r for r in rows if r.get("mAP50") is not None]
    if not rows:
        raise ValueError(f"{path}: no evaluated epoch (train with --eval-every 1)")
    return [0.0] + [r["train_minutes"] for r in rows], [0.0] + [r["mAP50"] for r in rows]


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("work_dirs", nargs=-1, required=True, type=click.Path(file_okay=False, exists=True))
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="PNG to write.")
@click.option("--labels", default=None, help="Comma-separated curve labels (default: folder names).")
@click.option("--target", type=float, default=None, help="Draw a horizontal target mAP line.")
@click.option("--budget-minutes", type=float, default=None, help="Draw a vertical time-budget line.")
def main(work_dirs, out, labels, target, budget_minutes):
    """Plot mAP@0.5 (thesis protocol) vs training minutes of WORK_DIRS."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = labels.split(",") if labels else [Path(w).name for w in work_dirs]
    with one_line_errors(ValueError):
        if len(names) != len(work_dirs):
            raise ValueError(f"{len(names)} labels for {len(work_dirs)} work dirs")
        curves = [read_curve(Path(w)) for w in work_dirs]
    fig, ax = plt.subplots(figsize=(6, 4), dpi=120)
    for (x, y), name in zip(curves, names):
        ax.plot(x, y, marker="o", label=name)
    if target is not None:
        ax.axhline(target, color="grey", ls="--", lw=1, label=f"target {target}")
    if budget_minutes is not None:
        ax.axvline(budget_minutes, color="grey", ls=":", lw=1, label=f"{budget_minutes:g} min")
    ax.set_xlabel("training minutes (2 CPU cores; evaluation excluded)")
    ax.set_ylabel("test mAP@0.5 (NMS 0.5, score >= 0.5)")
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    click.echo(f"wrote {out}")


if __name__ == "__main__":
    main()
