"""Import your own videos (files or frame folders) without annotations into a vidal-video-v1 file.

    python tools/import_video.py dashcam1.mp4 dashcam2.mov frames_dir/ --out data/mine/pool.h5 \\
        --classes car,pedestrian,cyclist --stride 5 --max-side 960

One input is one video (name: the file stem or the folder name). Every input is checked before
anything is written; a bad one is one line naming it, and no file appears. Rules:
vidal/data/video_import.py. Check the result with tools/validate_dataset.py.
"""

from __future__ import annotations

import click

from vidal.cli import IntInRange, command_line, one_line_errors
from vidal.data.video_import import VideoImportError, import_videos, parse_classes


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("inputs", nargs=-1, required=True, type=click.Path(exists=False))
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="Output .h5 file.")
@click.option("--classes", required=True,
              help="Comma-separated class names the detector will learn, e.g. car,pedestrian (ids 1..C in order).")
@click.option("--stride", type=IntInRange(1), default=1, show_default=True, help="Keep every N-th frame.")
@click.option("--max-side", type=IntInRange(8), default=None,
              help="Scale frames down so the longer side is at most PX pixels [default: keep the size].")
@click.option("--split", default="unlabeled", show_default=True, help="Split name stored in the file.")
@click.option("--fps", type=float, default=None,
              help="Frame rate stored [default: the first video's fps / stride; 30 / stride for frame folders].")
@click.option("--compression", type=click.Choice(["gzip", "lzf"]), default="gzip", show_default=True)
@click.option("--overwrite", is_flag=True, help="Replace --out if it exists.")
@click.option("--quiet", is_flag=True, help="No progress bars.")
def main(inputs, out, classes, stride, max_side, split, fps, compression, overwrite, quiet):
    """Import the video files / frame folders INPUTS into the vidal-video-v1 file --out."""
    command = command_line()
    with one_line_errors(VideoImportError, FileExistsError):
        summary = import_videos(inputs, out, parse_classes(classes), stride=stride, max_side=max_side, split=split,
                                fps=fps, overwrite=overwrite, compression=compression, progress=not quiet,
                                command=command)
    for v in summary["videos"]:
        click.echo(f"{v['name']}: {v['frames']} frames {v['width']}x{v['height']} from {v['source']}")
    n = len(summary["videos"])
    click.echo(f"wrote {summary['out']} ({n} video{'' if n == 1 else 's'}, {summary['frames']} frames, no annotations)")


if __name__ == "__main__":
    main()
