"""One registered comparison of two methods of a grid on chosen seeds: the paired difference at the
last cycle both reached, its 95 % t interval and the paired t test's p (docs/results.md: a
hypothesis picked out by some seeds is tested on new seeds only).

    python tools/paired_test.py work_dirs/grid-cpu-v3 --method label-dispersion-mean --baseline random-r \\
        --seeds 3,4,5 --alternative greater

Reads only the runs' ``metrics.jsonl``. Every (method, seed) run must have reached the same final
cycle: a missing or unfinished run is a one-line error naming its folder.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vidal.cli import one_line_errors  # noqa: E402


class PairedTestError(ValueError):
    """A run of the comparison is missing or unfinished."""


def paired_test(grid_dir: Path, method: str, baseline: str, seeds: list[int], metric: str, alternative: str) -> str:
    """The report's lines (see the module docstring)."""
    from vidal.results import collect_rows, paired_difference, paired_t_p

    rows = collect_rows(grid_dir, [method, baseline], seeds)
    last = {}
    for m in (method, baseline):
        for s in seeds:
            cycles = [r["cycle"] for r in rows if r["method"] == m and r["seed"] == s]
            if not cycles:
                raise PairedTestError(f"{grid_dir / m / f'seed{s}'}: no finished cycle (metrics.jsonl missing or "
                                      f"empty); run the grid for seed {s} first")
            last[(m, s)] = max(cycles)
    if len(set(last.values())) != 1:
        short = min(last, key=last.get)
        raise PairedTestError(f"{grid_dir / short[0] / f'seed{short[1]}'} stopped at cycle {last[short]}, the others "
                              f"reached cycle {max(last.values())}; finish it (run_grid.py resumes it)")
    cycle = next(iter(last.values()))
    p = paired_difference(rows, method, baseline, cycle, metric)
    value = {(r["method"], r["seed"]): r[metric] for r in rows if r["cycle"] == cycle}
    labeled = next(r["labeled_frames"] for r in rows if r["cycle"] == cycle)
    lines = [f"{method} - {baseline}, {metric}, cycle {cycle} ({labeled} labeled frames), seeds {seeds}:"]
    for s, d in zip(seeds, p["diffs"]):
        lines.append(f"  seed {s}: {value[(method, s)]:.4f} - {value[(baseline, s)]:.4f} = {d:+.4f}")
    pv = paired_t_p(p["mean"], p["std"], p["n"], alternative)
    lines.append(f"  mean {p['mean']:+.4f}, std {p['std']:.4f}, 95 % t interval [{p['ci95'][0]:+.4f}, "
                 f"{p['ci95'][1]:+.4f}], paired t p ({alternative}) = {pv:.3f}")
    return "\n".join(lines)


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("grid_dir", type=click.Path(exists=True, file_okay=False))
@click.option("--method", required=True, help="The method tested (a config stem of the grid).")
@click.option("--baseline", default="random-r", show_default=True, help="The method it is compared with.")
@click.option("--seeds", required=True, help="Comma-separated seeds, e.g. 3,4,5 (at least 2).")
@click.option("--metric", type=click.Choice(["map50_all_scores", "map50"]), default="map50_all_scores",
              show_default=True, help="Every-detection VOC AP@0.5 or the thesis metric (scores >= 0.5).")
@click.option("--alternative", type=click.Choice(["two-sided", "greater"]), default="two-sided", show_default=True,
              help="greater: the registered hypothesis 'method > baseline' (one-sided).")
def main(grid_dir, method, baseline, seeds, metric, alternative):
    """Test METHOD against BASELINE on SEEDS of GRID_DIR (paired over seeds)."""
    with one_line_errors(PairedTestError):
        try:
            seed_list = [int(s) for s in seeds.split(",") if s.strip()]
        except ValueError:
            raise PairedTestError(f"--seeds must be comma-separated integers, got {seeds!r}") from None
        if len(seed_list) < 2 or len(set(seed_list)) != len(seed_list):
            raise PairedTestError(f"--seeds needs at least 2 different seeds, got {seeds!r}")
        click.echo(paired_test(Path(grid_dir), method, baseline, seed_list, metric, alternative))


if __name__ == "__main__":
    main()
