"""Import ImageNet-VID (ILSVRC2015) into a vidal-video-v1 file.

    python tools/import_imagenet_vid.py /data/ILSVRC2015 --split train --out data/imagenet-vid/train.h5

Conversion rules (class mapping, incomplete frames, clipping): vidal/data/imagenet_vid.py.
"""

from __future__ import annotations

import click

from vidal.cli import command_line, one_line_errors
from vidal.data.imagenet_vid import (
    DEFAULT_CLASSES,
    AnnotationError,
    import_imagenet_vid,
)


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("root", type=click.Path(exists=True, file_okay=False))
@click.option("--split", default="train", show_default=True, help="Folder under Data/VID and Annotations/VID.")
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False), help="Output .h5 file.")
@click.option("--classes", default=",".join(DEFAULT_CLASSES), show_default=True,
              help="Comma-separated class names or WordNet ids to keep, in class-id order.")
@click.option("--all-videos", is_flag=True, help="Also import videos without any box of the kept classes.")
@click.option("--keep-incomplete", is_flag=True,
              help="Keep frames whose annotations look incomplete (a one-frame hole in a track).")
@click.option("--max-gap", type=int, default=1, show_default=True,
              help="Longest track hole (frames) that marks frames incomplete.")
@click.option("--fps", type=float, default=30.0, show_default=True, help="Nominal frame rate stored in the file.")
@click.option("--compression", type=click.Choice(["gzip", "lzf"]), default="gzip", show_default=True)
@click.option("--overwrite", is_flag=True, help="Replace --out if it exists.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def main(root, split, out, classes, all_videos, keep_incomplete, max_gap, fps, compression, overwrite, quiet):
    """Convert ROOT/{Data,Annotations}/VID/SPLIT into the vidal-video-v1 file OUT."""
    command = command_line()
    with one_line_errors(AnnotationError, ValueError, FileNotFoundError, FileExistsError):
        summary = import_imagenet_vid(root, split, out, classes=[c for c in classes.split(",") if c.strip()],
                                      only_videos_with_classes=not all_videos, drop_incomplete=not keep_incomplete,
                                      max_gap=max_gap, fps=fps, overwrite=overwrite, compression=compression,
                                      progress=not quiet, command=command)
    click.echo(str(summary))
    click.echo(f"wrote {summary.out}")


if __name__ == "__main__":
    main()
