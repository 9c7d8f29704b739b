"""Class balance of the labeled sets of AL runs (issue 17): per method, the ground-truth boxes per
class labeled by the last cycle, the entropy of that histogram (nats; log C when uniform) and the
AP of the pool's rarest class, mean ± std over seeds. Run from the folder the runs were made in
(their configs name the train split by a relative path).

    python tools/class_balance.py work_dirs/grid-cpu-v3/*/seed* [--out table.md]
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vidal.cli import one_line_errors  # noqa: E402


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("run_dirs", nargs=-1, required=True, type=click.Path(file_okay=False))
@click.option("--out", default=None, type=click.Path(dir_okay=False), help="Also write the markdown table here.")
def main(run_dirs, out):
    """Print the class-balance table of RUN_DIRS (work dirs of tools/run_al.py)."""
    from vidal.report import ReportError, class_balance_markdown, class_balance_table, load_runs

    with one_line_errors(ReportError):
        md = class_balance_markdown(class_balance_table(load_runs([d for d in run_dirs
                                                                  if (Path(d) / "metrics.jsonl").is_file()])))
    click.echo(md, nl=False)
    if out:
        tmp = Path(out).with_name(Path(out).name + ".tmp")
        tmp.write_text(md)
        tmp.replace(out)


if __name__ == "__main__":
    main()
