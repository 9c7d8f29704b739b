"""Check HDF5 dataset files against the ``vidal-video-v1`` format (docs/format.md).

    python tools/validate_dataset.py train.h5 test.h5 [--deep]

Prints ``OK <file>: N videos, T frames, M boxes`` for each valid file, else one line per
problem. Exit status: 0 all valid, 1 some file invalid, 2 bad usage (e.g. a path that does
not exist).
"""

from __future__ import annotations

import sys

import click

from vidal.data.validate import check_file


@click.command()
@click.argument("files", nargs=-1, required=True,
                type=click.Path(exists=True, dir_okay=False, readable=True))
@click.option("--deep", is_flag=True,
              help="Also decompress every frame chunk (slow; finds corrupt compressed chunks).")
def main(files: tuple[str, ...], deep: bool) -> None:
    """Validate each FILE; exit 1 if any is invalid."""
    n_invalid = 0
    for path in files:
        report = check_file(path, deep=deep)
        if report.ok:
            click.echo(f"OK {path}: {report.n_videos} videos, {report.n_frames} frames, "
                       f"{report.n_boxes} boxes")
        else:
            n_invalid += 1
            n = len(report.problems)
            click.echo(f"INVALID {path}: {n} problem{'s' if n > 1 else ''}")
            for line in report.problems:
                click.echo(f"  {line}")
    if n_invalid:
        click.echo(f"{n_invalid} of {len(files)} files invalid", err=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
