"""Import a COCO-VID json (+ image folder) into a vidal-video-v1 file.

    python tools/import_coco_vid.py coco/train.json --images coco/train --out data/y/train.h5

Conversion rules: vidal/data/coco_vid.py.
"""

from __future__ import annotations

import click

from vidal.cli import command_line, one_line_errors
from vidal.data.coco_vid import CocoVidFormatError, import_coco_vid


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("json_file", metavar="JSON", type=click.Path(exists=True, dir_okay=False))
@click.option("--images", "images", required=True, type=click.Path(exists=True, file_okay=False),
              help="Folder the images' file_name are relative to.")
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False), help="Output .h5 file.")
@click.option("--fps", type=float, default=None,
              help="Frame rate stored in the file [default: the json's info.fps, else 30].")
@click.option("--split", default=None,
              help="Split name stored in the file [default: the json's info.split, else 'imported'].")
@click.option("--compression", type=click.Choice(["gzip", "lzf"]), default="gzip", show_default=True)
@click.option("--overwrite", is_flag=True, help="Replace --out if it exists.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def main(json_file, images, out, fps, split, compression, overwrite, quiet):
    """Convert the COCO-VID JSON and its frames into the vidal-video-v1 file OUT."""
    command = command_line()
    with one_line_errors(CocoVidFormatError, ValueError, FileExistsError):
        summary = import_coco_vid(json_file, images, out, fps=fps, split=split, overwrite=overwrite,
                                  compression=compression, progress=not quiet, command=command)
    click.echo(str(summary))
    click.echo(f"wrote {summary.out}")


if __name__ == "__main__":
    main()
