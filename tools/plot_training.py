"""Plot test mAP@0.5 against training minutes for one or more tools/train.py work dirs.

    python tools/plot_training.py work_dirs/curve-effl0-imagenet work_dirs/curve-effl0-scratch \\
        --out docs/figures/train_curves.png [--target 0.5 --budget-minutes 10] [--metric both|voc|thesis]

Metrics (both written by tools/train.py): ``voc`` = VOC AP@0.5 over every detection the model
keeps (score >= 0.05; the usual detection mAP@0.5), ``thesis`` = the thesis protocol (NMS 0.5,
detections below score 0.5 rejected, 2.5.1). ``both`` draws voc solid and thesis dashed.
"""

from __future__ import annotations

from pathlib import Path

import click

from vidal.cli import one_line_errors
from vidal.report import read_jsonl


METRICS = {"voc": ("mAP50_all_scores", "all detections (VOC)"), "thesis": ("mAP50", "score >= 0.5 (thesis)")}


def read_curve(work_dir: Path, key: str = "mAP50") -> tuple[list[float], list[float]]:
    path = work_dir / "metrics.jsonl"
    if not path.is_file():
        raise ValueError(f"{path}: not found; is {work_dir} a tools/train.py work dir?")
    rows = []
    for n, row in read_jsonl(path, "train again with tools/train.py to rewrite it"):
        value, minutes = row.get(key), row.get("train_minutes")
        if value is None:
            continue
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (value, minutes)):
            raise ValueError(f"{path}: line {n}: {key} and train_minutes must be numbers, got {value!r} and "
                             f"{minutes!r}")
        rows.append(row)
    if not rows:
        raise ValueError(f"{path}: no evaluated epoch with {key} (train with --eval-every 1)")
    return [0.0] + [r["train_minutes"] for r in rows], [0.0] + [r[key] for r in rows]


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("work_dirs", nargs=-1, required=True, type=click.Path(file_okay=False, exists=True))
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="PNG to write.")
@click.option("--labels", default=None, help="Comma-separated curve labels (default: folder names).")
@click.option("--target", type=float, default=None, help="Draw a horizontal target mAP line.")
@click.option("--budget-minutes", type=float, default=None, help="Draw a vertical time-budget line.")
@click.option("--metric", type=click.Choice(["both", "voc", "thesis"]), default="both", show_default=True,
              help="voc: every kept detection; thesis: score >= 0.5 (2.5.1); both: voc solid, thesis dashed.")
def main(work_dirs, out, labels, target, budget_minutes, metric):
    """Plot test mAP@0.5 vs training minutes of WORK_DIRS."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = labels.split(",") if labels else [Path(w).name for w in work_dirs]
    with one_line_errors(ValueError):
        if len(names) != len(work_dirs):
            raise ValueError(f"{len(names)} labels for {len(work_dirs)} work dirs")
        metrics = ["voc", "thesis"] if metric == "both" else [metric]
        curves = {m: [read_curve(Path(w), METRICS[m][0]) for w in work_dirs] for m in metrics}
    fig, ax = plt.subplots(figsize=(6.4, 4.2 + 0.2 * len(names)), dpi=120)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    style = {"voc": "-", "thesis": "--"}
    for m in metrics:
        for k, ((x, y), name) in enumerate(zip(curves[m], names)):
            # one legend entry per run (its colour); the line style says the metric
            ax.plot(x, y, marker="o", ms=4, color=colors[k % len(colors)], ls=style[m],
                    label=name if m == metrics[0] else None)
    for m in metrics:
        ax.plot([], [], color="black", ls=style[m], label=METRICS[m][1])
    if target is not None:
        ax.axhline(target, color="grey", ls="--", lw=1, label=f"target {target}")
    if budget_minutes is not None:
        ax.axvline(budget_minutes, color="grey", ls=":", lw=1, label=f"{budget_minutes:g} min")
    right = max([max(x) for c in curves.values() for x, _ in c] + [budget_minutes or 0.0])
    ax.set_xlim(0, right * 1.08)
    ax.set_xlabel("training minutes (2 CPU cores; evaluation excluded)")
    ax.set_ylabel("test mAP@0.5")
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=2, frameon=False)
    fig.tight_layout()
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    click.echo(f"wrote {out}")


if __name__ == "__main__":
    main()
