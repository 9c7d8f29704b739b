"""Export a vidal-video-v1 file as COCO-VID json (+ frames as image files).

    python tools/export_coco_vid.py data/x/train.h5 --out data/x/coco     # -> coco/train.json, coco/train/<video>/*.jpg

Format details: vidal/data/coco_vid.py.
"""

from __future__ import annotations

import click

from vidal.data.coco_vid import export_coco_vid
from vidal.data.dataset import DatasetFormatError


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--out", "out", required=True, type=click.Path(file_okay=False), help="Output folder.")
@click.option("--image-format", type=click.Choice(["jpg", "png", "none"]), default="jpg", show_default=True,
              help="Format of the exported frames (png is lossless; none writes the json only).")
@click.option("--jpeg-quality", type=click.IntRange(1, 100), default=95, show_default=True)
@click.option("--overwrite", is_flag=True, help="Replace an existing json.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def main(file, out, image_format, jpeg_quality, overwrite, quiet):
    """Write OUT/<stem>.json and OUT/<stem>/<video>/<frame>.<ext> from the vidal-video-v1 FILE."""
    fmt = None if image_format == "none" else image_format
    try:
        json_path = export_coco_vid(file, out, image_format=fmt, jpeg_quality=jpeg_quality, overwrite=overwrite,
                                    progress=not quiet)
    except (DatasetFormatError, FileExistsError, OSError) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"wrote {json_path}")
    if fmt is not None:
        click.echo(f"frames in {json_path.with_suffix('')}/ (pass it as --images to tools/import_coco_vid.py)")


if __name__ == "__main__":
    main()
