"""Result table of AL runs (thesis Table 2.2): mAP@0.5 at the final budget, absolute and relative
to the all-data reference, mean ± std over seeds; markdown and CSV.

    python tools/make_table.py runs/*/seed* --out runs/table     # runs/table.md, runs/table.csv
"""

from __future__ import annotations

import click

from vidal.cli import one_line_errors
from vidal.report import ReportError, load_runs, table, table_markdown, write_table


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("run_dirs", nargs=-1, required=True, type=click.Path(file_okay=False))
@click.option("--out", default=None, type=click.Path(dir_okay=False),
              help="Output prefix: writes PREFIX.md and PREFIX.csv (default: print the markdown only).")
def main(run_dirs, out):
    """Tabulate the final mAP of RUN_DIRS (work dirs of tools/run_al.py)."""
    with one_line_errors(ReportError):
        rows = table(load_runs(run_dirs))
    click.echo(table_markdown(rows), nl=False)
    if out:
        md, cs = write_table(rows, out)
        click.echo(f"wrote {md} and {cs}")


if __name__ == "__main__":
    main()
