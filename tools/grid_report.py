"""Report of a grid made by tools/run_grid.py: raw rows (CSV), curves (PNG) and tables (markdown).

    python tools/grid_report.py work_dirs/grid-cpu --out docs/results --name cpu [--baseline random-r]

Writes ``OUT/NAME.csv`` (columns ``method,seed,cycle,labeled_frames,map50,map50_frequent``, the step
times and ``ap_<class>``; method names are the config file stems, ``all-data`` for the reference),
``OUT/NAME_curves.png`` (mean ± std over seeds, 4 classes), ``OUT/NAME_curves_frequent.png`` and
``OUT/NAME.md`` (Table 2.2-style table with the paired difference to the baseline and its 95 %
interval, label efficiency, time per cycle, selection distance to the baseline, noise floor).
Reads only JSON / npz files of the runs; the protocol comes from the config folder named in the
grid's ``grid.json``.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import click

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vidal.cli import one_line_errors  # noqa: E402


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("grid_dir", type=click.Path(file_okay=False))
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Output folder.")
@click.option("--name", default="results", show_default=True, help="Prefix of the output files.")
@click.option("--baseline", default="random-r", show_default=True, help="Method of the paired differences.")
@click.option("--metric", type=click.Choice(["map50_all_scores", "map50"]), default="map50_all_scores",
              show_default=True, help="What the tables rank on: map50_all_scores (VOC AP@0.5 over every detection: "
                                      "the lower-noise metric, docs/results.md) or map50 (thesis 2.5.1: scores >= "
                                      "0.5); the other is reported beside.")
@click.option("--configs", default=None, type=click.Path(file_okay=False),
              help="Config folder of the grid (default: the one recorded in grid.json).")
def main(grid_dir, out, name, baseline, metric, configs):
    """Write the report of GRID_DIR into --out."""
    from vidal.config import ConfigError, load_config
    from vidal.grid import CYCLE0_DIR, REFERENCE, GridError, discover_methods
    from vidal.results import ResultsError, write_grid_report

    grid = Path(grid_dir)
    with one_line_errors(GridError, ResultsError, ConfigError, OSError, ValueError):
        meta = grid / "grid.json"
        if not meta.is_file():
            raise ResultsError(f"{grid}: no grid.json (not a folder of tools/run_grid.py)")
        folder = Path(configs or json.loads(meta.read_text())["configs"])
        available = discover_methods(folder)
        methods = [m for m in available if (grid / m).is_dir()]
        if not methods:
            raise ResultsError(f"{grid}: no method run folders of {folder}")
        seeds = sorted({int(m.group(1)) for d in (grid / CYCLE0_DIR).glob("seed*")
                        if (m := re.fullmatch(r"seed(\d+)", d.name))})
        cfg = load_config(available[methods[0]])
        exp_files = sorted((grid / methods[0]).glob("seed*/experiment.json"))
        if not exp_files:
            raise ResultsError(f"{grid / methods[0]}: no run has started (no experiment.json)")
        cycles = int(json.loads(exp_files[0].read_text())["protocol"]["cycles"])
        order = [m for m in ("random", "random-r", "least-confidence-mean", "margin-sum", "entropy-mean",
                             "oracle-fp", "oracle-fn", "tc-flow") if m in methods]
        order += [m for m in methods if m not in order]
        paths = write_grid_report(grid, cfg, order, seeds, cycles, out, name=name,
                                  baseline=baseline if baseline in methods else order[0], metric=metric)
    has_ref = (grid / REFERENCE).is_dir()
    click.echo(f"{len(order)} methods x seeds {seeds}{' + all-data' if has_ref else ''}: "
               f"wrote {', '.join(str(p) for p in paths.values())}")


if __name__ == "__main__":
    main()
