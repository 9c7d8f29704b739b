"""Result table of AL runs (thesis Table 2.2): mAP@0.5 at the final budget, absolute and relative
to the all-data reference, mean ± std over seeds; markdown and CSV.

    python tools/make_table.py runs/*/seed* --out runs/table     # runs/table.md, runs/table.csv
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import click

from vidal.cli import one_line_errors
from vidal.report import ReportError, load_runs, table, table_markdown, write_table


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("run_dirs", nargs=-1, required=True, type=click.Path(file_okay=False))
@click.option("--out", default=None, type=click.Path(dir_okay=False),
              help="Output prefix: writes PREFIX.md and PREFIX.csv (default: print the markdown only).")
@click.option("--overwrite", is_flag=True, help="Replace an existing PREFIX.md / PREFIX.csv.")
def main(run_dirs, out, overwrite):
    """Tabulate the final mAP of RUN_DIRS (work dirs of tools/run_al.py)."""
    with one_line_errors(ReportError, ValueError):
        if out:
            prefix = Path(out)
            existing = [p for p in (prefix.with_name(prefix.name + ".md"), prefix.with_name(prefix.name + ".csv"))
                        if p.exists()]
            if existing and not overwrite:
                raise ValueError(f"{existing[0]} exists; pass --overwrite to replace it, or choose another --out")
        rows = table(load_runs(run_dirs))
    click.echo(table_markdown(rows), nl=False)
    if out:
        prefix.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=prefix.parent, prefix=f".{prefix.name}.tmp-"))
        try:                        # written in a temporary folder, then renamed: no partial table
            md_tmp, cs_tmp = write_table(rows, tmp / prefix.name)
            md, cs = prefix.with_name(md_tmp.name), prefix.with_name(cs_tmp.name)
            os.replace(cs_tmp, cs)
            os.replace(md_tmp, md)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        click.echo(f"wrote {md} and {cs}")


if __name__ == "__main__":
    main()
